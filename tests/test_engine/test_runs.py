"""engine/runs.py: one run's config set-up (no training here; the study and main-job tests
train through it)."""
from __future__ import annotations

from helpers import REPO

DETECTOR = REPO / 'configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py'
CROPS = REPO / 'configs/classification/synthvoc/resnet18_synthvoc-crops.py'


def test_detector_run_config(tmp_path) -> None:
    from fq_det.engine.runs import final_checkpoint, run_config
    cfg = run_config(DETECTOR, tmp_path / 'data', tmp_path / 'work', 3, iters=40,
                     backbone=tmp_path / 'backbone.pth', validate=False,
                     cfg_options={'model.backbone.quant_cfg.num_splits': 2})
    assert cfg.work_dir == str(tmp_path / 'work') and cfg.randomness == dict(seed=3)
    assert cfg.experiment_name == 'work' and 'name' not in cfg.visualizer
    assert cfg.model.backbone.quant_cfg.num_splits == 2
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint=str(tmp_path / 'backbone.pth'))
    assert cfg.train_dataloader.dataset.data_root.startswith(str(tmp_path / 'data'))
    assert cfg.val_dataloader is None and cfg.val_cfg is None and cfg.val_evaluator is None
    assert cfg.default_hooks.visualization.draw is False
    assert final_checkpoint(cfg) == tmp_path / 'work' / 'iter_40.pth'


def test_classifier_run_config(tmp_path) -> None:
    from fq_det.engine.runs import final_checkpoint, run_config
    cfg = run_config(CROPS, tmp_path / 'data', tmp_path / 'pre', 0, epochs=2, name='crops')
    assert cfg.experiment_name == 'crops' and cfg.val_dataloader is not None
    assert final_checkpoint(cfg) == tmp_path / 'pre' / 'epoch_2.pth'


def test_curves_read_from_resumed_parts(tmp_path) -> None:
    """A resumed training logs into a second timestamped folder: both parts count."""
    import json

    from fq_det.engine.runs import last_val_top1, loss_curve
    for part, lines in (('20260101_000000', [dict(step=10, loss=2.0), 'not json',
                                             dict(step=20, loss=1.5)]),
                        ('20260101_010000', [dict(step=30, loss=1.0),
                                             {'accuracy/top1': 71.5, 'step': 2}])):
        folder = tmp_path / part / 'vis_data'
        folder.mkdir(parents=True)
        (folder / 'scalars.json').write_text('\n'.join(
            x if isinstance(x, str) else json.dumps(x) for x in lines))
    assert loss_curve(tmp_path) == [[10, 2.0], [20, 1.5], [30, 1.0]]
    assert last_val_top1(tmp_path) == 71.5
