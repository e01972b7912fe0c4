"""DPO (and IPO, cDPO) on Ray Train + DeepSpeed: one stage of the UltraMedical recipe.

    ray job submit --working-dir . -- python jobs/dpo.py --config configs/llama3-8b.yaml [--resume]
    python jobs/dpo.py --config configs/tiny-cpu.yaml --dpo.epochs 1

Same as `ultramedical dpo`; the recipe is jobs/train_stage.py. The model lands in
runs/<name>/dpo/final.
"""

import sys

from jobs.train_stage import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], "dpo"))
