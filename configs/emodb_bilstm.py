"""S1's BiLSTM cell on Emo-DB: 2 × BiLSTM 64 on log-mel (40) + Δ + ΔΔ over 25-frame segments.

python -m serjax.main --config=configs/emodb_bilstm.py --workdir=runs/emodb_bilstm
"""

from pathlib import Path

from serjax import config_lib


def get_config():
    config = config_lib.load_config_file(Path(__file__).with_name("emodb_lstm.py"))
    config.model.name = "bilstm"
    config.model.hidden_sizes = (64, 64)
    return config
