"""S1's BiLSTM cell on Emo-DB: 2 × BiLSTM 64 on log-mel (40) + Δ + ΔΔ over 25-frame segments.

python -m serjax.main --config=configs/emodb_bilstm.py --workdir=runs/emodb_bilstm

Measured (that command, 2-core CPU at a load average of 2-4, 11.6 min of training): on speaker
16, WA 73.2 % (52 of 71), UA 64.5 %, macro-F1 62.3 %, mean ROC-AUC 0.974; S1 reports 57.7 %
(WA). Best validation UA (speaker 15) at epoch 3 of 10. One seed.
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_lstm.py"))
    config.model.name = "bilstm"
    config.model.hidden_sizes = (64, 64)
    return config
