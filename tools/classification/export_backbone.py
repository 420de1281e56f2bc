"""Write a classifier's backbone as a checkpoint a detector loads with init_cfg=Pretrained.

python tools/classification/export_backbone.py CHECKPOINT OUT
then in the detection config: backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint=OUT))
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)
import fq_det  # noqa: E402,F401
from fq_det.classification.export import export_backbone  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'checkpoint', help='classifier checkpoint (from tools/classification/train.py)')
    parser.add_argument('out', help='backbone checkpoint to write (.pth)')
    args = parser.parse_args()
    try:
        info = export_backbone(args.checkpoint, args.out)
    except (FileNotFoundError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(
        f"wrote {info['out']}: {info['num_tensors']} tensors, "
        f"{info['num_params']:,} parameters/buffers"
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
