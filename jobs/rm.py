"""Reward modelling on Ray Train + DeepSpeed: one stage of the UltraMedical recipe.

    ray job submit --working-dir . -- python jobs/rm.py --config configs/llama3-8b.yaml [--resume]
    python jobs/rm.py --config configs/tiny-cpu.yaml --rm.epochs 1

Same as `ultramedical rm`; the recipe is jobs/train_stage.py. The model lands in
runs/<name>/rm/final.
"""

import sys

from jobs.train_stage import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], "rm"))
