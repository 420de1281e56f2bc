"""Classification training (one per architecture family), export -> detector, robustness tool."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

import fq_det  # noqa: F401
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmdet.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
SYNTH = REPO / 'configs' / 'classification' / 'synthetic'
FAMILIES = {
    'resnet_pow': 'resnet18-pow1-l2_synthcls.py',
    'cifar_smallnet': 'smallnet-pow2-l1_synthcls.py',
    'plain10': 'plain10-pow1-l2_synthcls.py'
}


def tiny_cfg(name: str, work_dir: Path) -> Config:
    """The synthetic config, shrunk: 32 training images, 2 iterations, 20 test images."""
    cfg = Config.fromfile(SYNTH / name)
    cfg.merge_from_dict({
        'work_dir': str(work_dir),
        'train_dataloader.batch_size': 16,
        'train_dataloader.dataset.num_samples': 32,
        'val_dataloader.dataset.num_samples': 20,
        'test_dataloader.dataset.num_samples': 20,
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'param_scheduler': [],
        'default_hooks.logger.interval': 1,
        'optim_wrapper.optimizer.lr': 0.02,
        'randomness': dict(seed=0)
    })
    return cfg


def train(cfg: Config):
    runner = Runner.from_cfg(cfg)
    before = {k: v.detach().clone() for k, v in runner.model.state_dict().items()}
    runner.train()
    metrics = runner.test()
    return runner, before, metrics


@pytest.fixture(scope='module')
def trained_resnet_pow(tmp_path_factory):
    work = tmp_path_factory.mktemp('cls_resnet_pow')
    cfg = tiny_cfg(FAMILIES['resnet_pow'], work)
    runner, before, metrics = train(cfg)
    return cfg, runner, before, metrics, work / 'epoch_1.pth'


def _check_training(runner, before, metrics):
    after = runner.model.state_dict()
    changed = [
        k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])
    ]
    assert any('backbone' in k for k in changed) and any('head' in k or 'classifier_conv' in k
                                                         for k in changed)
    alphas = [k for k in changed if k.endswith('.alpha')]
    assert alphas, 'POW exponents did not train'
    assert 0 <= metrics['accuracy/top1'] <= metrics['accuracy/top5'] <= 100
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert torch.isfinite(torch.tensor(loss))
    reg = runner.message_hub.log_scalars.get('train/loss_alpha_reg')
    assert reg is not None, 'alpha regulariser did not reach the loss'


def test_train_resnet_pow(trained_resnet_pow):
    _, runner, before, metrics, ckpt = trained_resnet_pow
    _check_training(runner, before, metrics)
    assert ckpt.is_file()


@pytest.mark.parametrize('family', ['cifar_smallnet', 'plain10'])
def test_train_family(family, tmp_path):
    _check_training(*train(tiny_cfg(FAMILIES[family], tmp_path)))


def _tiny_faster_rcnn(tiny_detector, backbone: dict, checkpoint: str) -> dict:
    """The tiny detector with the classifier's backbone, loaded from ``checkpoint``."""
    backbone = copy.deepcopy(backbone)
    backbone.update(
        out_indices=(0, 1, 2, 3),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint))
    return tiny_detector.model_cfg(backbone=backbone, num_classes=3)


def test_export_backbone_loads_into_detector(trained_resnet_pow, tmp_path, monkeypatch, capsys,
                                            tiny_detector):
    import runpy
    cfg, runner, _, _, ckpt = trained_resnet_pow
    out = tmp_path / 'backbone.pth'
    monkeypatch.setattr('sys.argv', ['export_backbone.py', str(ckpt), str(out)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / 'tools/classification/export_backbone.py'), run_name='__main__')
    assert exit_info.value.code == 0 and 'wrote' in capsys.readouterr().out

    exported = torch.load(out, map_location='cpu', weights_only=True)['state_dict']
    classifier = runner.model.state_dict()
    init_default_scope('mmdet')
    detector = MODELS.build(_tiny_faster_rcnn(tiny_detector, cfg.model.backbone, str(out)))
    det_backbone = detector.backbone.state_dict()
    assert set(exported) == set(det_backbone), 'missing/unexpected backbone keys'
    assert any(k.endswith('.alpha') for k in exported)
    assert not all(torch.equal(det_backbone[k], exported[k]) for k in exported)  # before loading
    detector.init_weights()
    det_backbone = detector.backbone.state_dict()
    for key, value in exported.items():
        assert torch.equal(det_backbone[key], value), key
        assert torch.equal(value, classifier[f'backbone.{key}']), key


def test_export_rejects_non_classifier(tmp_path):
    from fq_det.classification import export_backbone
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'neck.w': torch.zeros(1)}}, bad)
    with pytest.raises(KeyError, match='backbone'):
        export_backbone(bad, tmp_path / 'out.pth')


def test_robustness_tool(trained_resnet_pow, tmp_path, monkeypatch):
    import runpy
    from fq_det.evaluation.robustness import run_sweep
    cfg_path = SYNTH / FAMILIES['resnet_pow']
    _, _, _, metrics, ckpt = trained_resnet_pow
    out_dir = tmp_path / 'rob'
    argv = [
        'test_robustness.py',
        str(cfg_path),
        str(ckpt), '--distortions', 'salt_pepper', 'targeted_occlusion', '--severities', '1', '5',
        '--seeds', '0', '1', '--out-dir',
        str(out_dir), '--cfg-options', 'test_dataloader.dataset.num_samples=20'
    ]
    monkeypatch.setattr('sys.argv', argv)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / 'tools/classification/test_robustness.py'), run_name='__main__')
    assert exit_info.value.code == 0
    res = json.loads((out_dir / 'results.json').read_text())
    assert res['metric_key'] == 'accuracy/top1' and res['seeds'] == [0, 1]
    assert res['clean']['accuracy/top1'] == pytest.approx(metrics['accuracy/top1'])
    assert set(res['distorted']) == {'salt_pepper', 'targeted_occlusion'}
    for d, by_sev in res['distorted'].items():
        assert set(by_sev) == {'1', '5'}
        for s, m in by_sev.items():
            assert 0 <= m['accuracy/top1'] <= m['accuracy/top5'] <= 100
            runs = res['per_seed'][d][s]['accuracy/top1']
            assert len(runs) == 2 and m['accuracy/top1'] == pytest.approx(sum(runs) / 2)
            assert res['distorted_std'][d][s]['accuracy/top1'] == pytest.approx(
                abs(runs[0] - runs[1]) / 2)
    assert res['summary']['P'] == res['clean']['accuracy/top1']
    table = (out_dir / 'results.md').read_text()
    assert 'Salt & Pepper' in table and 'Tar. Occ.' in table and 'Clean' in table

    # Resumable: a second run evaluates nothing and writes the same numbers.
    from fq_det.evaluation import robustness as sweep
    monkeypatch.setattr(sweep, '_evaluate',
                        lambda *a, **k: pytest.fail('re-evaluated a finished condition'))
    cfg = Config.fromfile(cfg_path)
    cfg.test_dataloader.dataset.num_samples = 20
    again = run_sweep('classification', cfg,
        str(ckpt),
        out_dir,
        distortions=['salt_pepper', 'targeted_occlusion'],
        severities=[1, 5],
        seeds=[0, 1])
    assert again['distorted'] == res['distorted']


def test_robustness_top1_only_per_image_and_stale(trained_resnet_pow, tmp_path):
    """A top-1-only evaluator (the crop configs') gives a top-1 Table 3; per-image records
    recompute the sweep's accuracy; another test set in the same out-dir is refused."""
    import numpy as np
    from fq_det.evaluation.robustness import run_sweep
    from fq_det.evaluation import load_per_image, topk_accuracy_of_subset
    _, _, _, _, ckpt = trained_resnet_pow
    cfg = Config.fromfile(SYNTH / FAMILIES['resnet_pow'])
    cfg.test_dataloader.dataset.num_samples = 20
    cfg.test_evaluator = dict(type='Accuracy', topk=(1, ))
    out_dir = tmp_path / 'rob'
    res = run_sweep('classification', cfg, str(ckpt), out_dir, distortions=['jpeg'],
                                                   severities=[3], save_per_image=True)
    assert set(res['clean']) == {'accuracy/top1'}
    table = (out_dir / 'results.md').read_text()
    assert 'top-1 %: the evaluator measured no top-5' in table and 'Jpeg Comp.' in table
    for name, metrics in (('clean', res['clean']), ('jpeg_s3', res['distorted']['jpeg']['3'])):
        rec = load_per_image(str(out_dir / 'per_image' / f'{name}.npz'))
        assert rec['topk_labels'].shape == (20, 1)
        assert topk_accuracy_of_subset(rec, np.arange(20), 1) == metrics['accuracy/top1']
    cfg.test_dataloader.dataset.num_samples = 10
    with pytest.raises(ValueError, match='config after overrides'):
        run_sweep('classification', cfg, str(ckpt), out_dir, distortions=['jpeg'],
                                                 severities=[3])


def test_train_tool_resumes(trained_resnet_pow, tmp_path):
    """train.py --resume continues from the latest checkpoint (loaded under weights_only)."""
    import argparse
    import runpy
    import shutil
    tool = runpy.run_path(str(REPO / 'tools/classification/train.py'))
    _, _, _, _, ckpt = trained_resnet_pow
    work = tmp_path / 'work'
    shutil.copytree(ckpt.parent, work)
    overrides = {
        'train_dataloader.batch_size': 16,
        'train_dataloader.dataset.num_samples': 32,
        'val_dataloader.dataset.num_samples': 20,
        'train_cfg.max_epochs': 2,
        'param_scheduler': [],
        'default_hooks.checkpoint.max_keep_ckpts': 3
    }
    args = argparse.Namespace(
        config=str(SYNTH / FAMILIES['resnet_pow']),
        work_dir=str(work),
        resume='auto',
        amp=False,
        cfg_options=overrides,
        data_root=None)
    cfg = tool['build_cfg'](args)
    assert cfg.resume is True and cfg.load_from is None
    first = (work / 'epoch_1.pth').read_bytes()
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 2 and runner.iter == 4
    assert (work / 'epoch_2.pth').is_file()
    assert (work / 'epoch_1.pth').read_bytes() == first  # epoch 1 was resumed, not trained again
