"""Reward modelling on Ray Train + DeepSpeed: one stage of the UltraMedical recipe.

    ray job submit --working-dir . -- python jobs/rm.py --config configs/llama3-8b.yaml [--resume]
    python jobs/rm.py --config configs/tiny-cpu.yaml --rm.epochs 1

Same as `ultramedical rm`; the model lands in runs/<name>/rm/final.
"""

import sys

from actors.shared_storage import check_stage_storage
from ultramedical.cli import main

if __name__ == "__main__":
    argv = ["rm", *sys.argv[1:]]
    check_stage_storage(argv)  # every node must see runs_root, where the workers write
    sys.exit(main(argv))
