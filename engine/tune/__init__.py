"""Tuning: teach a CTC model a user's domain. `config` and `events` import without torch; the
loop (`loop.run_job`) and what it uses import torch. Imports inference (engine.*), never the
library."""
