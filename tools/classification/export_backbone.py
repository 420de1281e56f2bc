"""Write a classifier's backbone as a checkpoint a detector loads with init_cfg=Pretrained.

python tools/classification/export_backbone.py CHECKPOINT OUT
then in the detection config: backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint=OUT))
"""
from __future__ import annotations

import argparse
import sys

import fq_det  # noqa: F401
from fq_det.cli import (check_not_same_file, check_output_file, load_checkpoint_file,
                         report_user_errors)
from fq_det.classification.export import export_backbone


@report_user_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'checkpoint', help='classifier checkpoint (from tools/classification/train.py)')
    parser.add_argument('out', help='backbone checkpoint to write (.pth)')
    args = parser.parse_args(argv)
    check_not_same_file(args.checkpoint, args.out, 'backbone checkpoint to write')
    check_output_file(args.out, 'backbone checkpoint')
    load_checkpoint_file(args.checkpoint)  # a named error for a missing, empty or truncated file
    info = export_backbone(args.checkpoint, args.out)
    print(
        f"wrote {info['out']}: {info['num_tensors']} tensors, "
        f"{info['num_params']:,} parameters/buffers"
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
