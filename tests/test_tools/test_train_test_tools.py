"""tools/train.py and tools/test.py: short training of every backbone variant, testing with
VOC mAP, resume from a checkpoint, and the early, clear error when the data set is missing."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTH = REPO_ROOT / 'configs' / 'synthvoc'


def _tool(name: str):
    return load_script(f'tools/{name}.py')


def _unique(tag: str) -> list[str]:
    # Runners in one process share mmengine's named singletons (logger, visualizer): give each
    # its own, so its logs land in its own work dir.
    ns = time.time_ns()
    return [f'experiment_name={tag}_{ns}', f'visualizer.name=vis_{tag}_{ns}']


def _tiny(iters: int, tag: str, ckpt_every: int | None = None) -> list[str]:
    opts = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2', *_unique(tag)]
    if ckpt_every:
        opts.append(f'default_hooks.checkpoint.interval={ckpt_every}')
    return ['--cfg-options', *opts]


def _logged_iters(work_dir: Path) -> list[dict]:
    """Per-iteration training records of the newest run in work_dir (vis_data/scalars.json)."""
    runs = sorted(work_dir.glob('*/vis_data/scalars.json'), key=lambda p: p.stat().st_mtime)
    records = [json.loads(line) for line in runs[-1].read_text().splitlines() if line.strip()]
    return [r for r in records if 'loss' in r]


@pytest.mark.parametrize('variant', ['', '_sf', '_pow', '_hpow'], ids=['plain', 'sf', 'pow', 'hpow'])
def test_train_few_iterations(variant: str, synthetic_voc_root: Path, tmp_path: Path) -> None:
    train = _tool('train')
    work = tmp_path / 'work'
    runner = train.main([str(SYNTH / f'faster_rcnn_r18{variant}_synthvoc.py'), '--work-dir', str(work),
                         '--data-root', str(synthetic_voc_root), *_tiny(3, variant or 'plain')])
    assert runner.iter == 3
    assert (work / 'iter_3.pth').is_file()
    records = _logged_iters(work)
    assert [r['iter'] for r in records] == [1, 2, 3]
    assert all(r['loss'] == r['loss'] and r['loss'] > 0 for r in records)  # finite, positive
    if variant in ('_pow', '_hpow'):
        assert all('loss_alpha_reg' in r for r in records)
    # validation at the end of training ran VOCMetric on the test split
    assert any('pascal_voc/mAP' in json.loads(line) for line in
               next(work.glob('*/vis_data/scalars.json')).read_text().splitlines())


@pytest.fixture(scope='module')
def trained(synthetic_voc_root: Path, tmp_path_factory) -> Path:
    """A 4-iteration run with checkpoints at iterations 2 and 4."""
    work = tmp_path_factory.mktemp('trained')
    runner = _tool('train').main([str(SYNTH / 'faster_rcnn_r18_pow_synthvoc.py'), '--work-dir', str(work),
                                  '--data-root', str(synthetic_voc_root), *_tiny(4, 'base', ckpt_every=2)])
    assert runner.iter == 4
    return work


def test_test_returns_voc_map(trained: Path, synthetic_voc_root: Path, tmp_path: Path) -> None:
    test = _tool('test')
    out = tmp_path / 'preds.pkl'
    metrics = test.main([str(SYNTH / 'faster_rcnn_r18_pow_synthvoc.py'), str(trained / 'iter_4.pth'),
                         '--work-dir', str(tmp_path / 'test'), '--data-root', str(synthetic_voc_root),
                         '--out', str(out), '--cfg-options', *_unique('test')])
    assert 0.0 <= metrics['pascal_voc/mAP'] <= 1.0
    assert 'pascal_voc/AP50' in metrics
    assert out.is_file() and out.stat().st_size > 0


def test_test_tta(trained: Path, synthetic_voc_root: Path, tmp_path: Path) -> None:
    metrics = _tool('test').main([str(SYNTH / 'faster_rcnn_r18_pow_synthvoc.py'), str(trained / 'iter_4.pth'),
                                  '--work-dir', str(tmp_path), '--data-root', str(synthetic_voc_root), '--tta',
                                  '--cfg-options', *_unique('tta')])
    assert 'pascal_voc/mAP' in metrics


def test_resume_from_checkpoint_and_auto(trained: Path, synthetic_voc_root: Path, tmp_path: Path) -> None:
    import shutil
    work = tmp_path / 'resumed'
    work.mkdir()
    shutil.copy(trained / 'iter_2.pth', work / 'iter_2.pth')  # "interrupted after the first checkpoint"
    train = _tool('train')
    cfg = str(SYNTH / 'faster_rcnn_r18_pow_synthvoc.py')
    common = ['--work-dir', str(work), '--data-root', str(synthetic_voc_root)]
    runner = train.main([cfg, *common, '--resume', str(work / 'iter_2.pth'), *_tiny(5, 'resume')])
    assert runner.iter == 5
    assert [r['iter'] for r in _logged_iters(work)] == [3, 4, 5]
    # --resume without a value: the latest checkpoint of the work dir (iter_5.pth)
    runner = train.main([cfg, *common, '--resume', *_tiny(6, 'auto')])
    assert runner.iter == 6
    assert [r['iter'] for r in _logged_iters(work)] == [6]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_missing_voc_stops_early_with_help(tmp_path: Path) -> None:
    """The real command line: exit status 2, the message on stderr, no traceback, no work dir."""
    proc = _run([str(REPO_ROOT / 'tools/train.py'), str(REPO_ROOT / 'configs/faster_rcnn_r50_pow.py')], tmp_path)
    assert proc.returncode == 2
    err = proc.stderr
    assert '\nerror: The data set of ' in '\n' + err
    assert str(tmp_path / 'data/VOCdevkit/VOC2007/ImageSets/Main/trainval.txt') in err
    assert str(tmp_path / 'data/VOCdevkit/VOC2007/ImageSets/Main/test.txt') in err
    assert str(tmp_path / 'data/VOCdevkit/VOC2007/JPEGImages') in err
    assert 'make_synthetic_voc.py' in err and 'configs/synthvoc/' in err and '--data-root' in err
    assert 'Traceback' not in err
    assert not (tmp_path / 'work_dirs').exists()  # stopped before the runner was built


def test_missing_data_in_test_tool_and_synthetic_configs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match='VOCdevkit/VOC2007/ImageSets/Main/test.txt'):
        _tool('test').main([str(REPO_ROOT / 'configs/faster_rcnn_r50.py'), 'x.pth'])
    # a synthvoc config says how to write the synthetic set where it reads it
    with pytest.raises(SystemExit, match='make_synthetic_voc.py --out data/synthvoc/'):
        _tool('train').main([str(SYNTH / 'faster_rcnn_r18_synthvoc.py')])
    assert not (tmp_path / 'work_dirs').exists()


def test_amp_without_gpu_is_a_clear_error(synthetic_voc_root: Path, tmp_path: Path) -> None:
    import torch
    if torch.cuda.is_available():
        pytest.skip('a GPU is visible: --amp is valid here')
    with pytest.raises(SystemExit, match='--amp needs a CUDA GPU'):
        _tool('train').main([str(SYNTH / 'faster_rcnn_r18_synthvoc.py'), '--work-dir', str(tmp_path),
                             '--data-root', str(synthetic_voc_root), '--amp'])


def test_auto_scale_lr_enables_scaling(synthetic_voc_root: Path, tmp_path: Path) -> None:
    from fq_det.cli import config_from_args
    train = _tool('train')
    args = train.parse_args([str(SYNTH / 'faster_rcnn_r18_synthvoc.py'), '--auto-scale-lr'])
    cfg = config_from_args(args)
    assert cfg.auto_scale_lr.base_batch_size == 4 and not cfg.auto_scale_lr.get('enable', False)
    runner = train.main([str(SYNTH / 'faster_rcnn_r18_synthvoc.py'), '--work-dir', str(tmp_path),
                         '--data-root', str(synthetic_voc_root), '--auto-scale-lr', *_tiny(1, 'lr')])
    # batch 2 on one process against base 4: lr halves (1e-3 -> 5e-4) before warm-up scales it
    assert runner.optim_wrapper.optimizer.param_groups[0]['initial_lr'] == pytest.approx(5e-4)


def test_pretrained_backbone_from_the_command_line(tmp_path: Path) -> None:
    """The docs' recipe: a backbone checkpoint (as export_backbone writes) via --cfg-options."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from fq_det.cli import config_from_args
    train = _tool('train')
    init_default_scope('mmdet')
    cfg_path = SYNTH / 'faster_rcnn_r18_pow_synthvoc.py'
    backbone = MODELS.build(dict(Config.fromfile(cfg_path).model.backbone, init_cfg=None))
    torch.nn.init.normal_(backbone.conv1.weight)
    ckpt = tmp_path / 'backbone.pth'
    torch.save({'state_dict': backbone.state_dict()}, ckpt)
    args = train.parse_args([str(cfg_path), '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                             'model.backbone.init_cfg._delete_=True',
                             'model.backbone.init_cfg.type=Pretrained',
                             f'model.backbone.init_cfg.checkpoint={ckpt}'])
    cfg = config_from_args(args)
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint=str(ckpt))
    detector = MODELS.build(cfg.model)
    detector.init_weights()
    assert torch.equal(detector.backbone.conv1.weight, backbone.conv1.weight)
