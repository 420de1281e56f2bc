"""fq_det.cli: the set-up the tools share (the error paths are in test_tool_errors.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from fq_det.cli import (check_not_same_file, config_from_args, enable_amp, set_resume,
                         set_seed)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(REPO_ROOT / 'configs' / 'synthvoc' / 'faster_rcnn_r18_pow_synthvoc.py')


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{'config': CONFIG, 'cfg_options': None, 'data_root': None,
                                 'work_dir': None, **kw})


def test_config_from_args_applies_the_command_line(synthetic_voc_root, tmp_path):
    cfg = config_from_args(_args(cfg_options={'train_cfg.max_iters': 7},
                                 data_root=str(synthetic_voc_root), work_dir=str(tmp_path / 'w'),
                                 launcher='none', local_rank=0), splits=('train', 'val'))
    assert cfg.train_cfg.max_iters == 7 and cfg.work_dir == str(tmp_path / 'w')
    assert cfg.train_dataloader.dataset.data_root == str(synthetic_voc_root) + '/'
    assert cfg.launcher == 'none' and not (tmp_path / 'w').exists()  # checked, not created
    default = config_from_args(_args())
    assert default.work_dir == 'work_dirs/faster_rcnn_r18_pow_synthvoc'


def test_seed_resume_and_amp(tmp_path):
    import torch
    cfg = config_from_args(_args(work_dir=str(tmp_path)))
    set_seed(cfg, 7)
    assert cfg.randomness.seed == 7
    with pytest.raises(ValueError, match='--seed must be >= 0'):
        set_seed(cfg, -1)
    set_resume(cfg, 'auto')  # an empty work dir: mmengine starts afresh
    assert cfg.resume is True and cfg.load_from is None
    if torch.cuda.is_available():
        enable_amp(cfg)
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    else:
        with pytest.raises(ValueError, match='--amp needs a CUDA GPU'):
            enable_amp(cfg)


def test_same_file_through_another_path_is_refused(tmp_path):
    source = tmp_path / 'a.pth'
    source.write_bytes(b'x')
    (tmp_path / 'link.pth').symlink_to(source)
    with pytest.raises(ValueError, match='refusing to overwrite'):
        check_not_same_file(source, tmp_path / 'link.pth')
    check_not_same_file(source, tmp_path / 'b.pth')  # another file: fine
