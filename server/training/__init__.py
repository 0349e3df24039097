"""The torch side: model, data, training loop, ONNX export. Never imported by the serving path."""

import os

# Set before torch loads OpenMP. Spin-waiting OpenMP threads make training several times slower
# whenever another process (the game server, a second training) wants the same 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
