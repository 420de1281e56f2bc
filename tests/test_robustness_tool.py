"""The robustness sweep and tools/test_robustness.py, end to end on a tiny detector."""
from __future__ import annotations

import importlib.util
import json
import math

import pytest

import fq_det  # noqa: F401
from fq_det.evaluation import robustness
from fq_det.evaluation.robustness import (format_results_table, insert_distort,
                                          run_robustness_sweep, summarize)

TINY_CONFIG = """
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py'
custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)
data_root = {data_root!r}
metainfo = dict(classes=('circle', 'square', 'triangle', 'cross', 'star'))
model = dict(
    backbone=dict(depth=18, base_channels=8, init_cfg=None),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    rpn_head=dict(in_channels=16, feat_channels=16),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=16),
                  bbox_head=dict(in_channels=16, fc_out_channels=32, num_classes=5)),
    test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50)))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
test_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
val_dataloader = test_dataloader
default_hooks = dict(logger=dict(interval=1))
"""


@pytest.fixture(scope='module')
def tiny(synthetic_voc_root, tmp_path_factory):
    """(config path, randomly initialised checkpoint path) of a tiny Faster R-CNN."""
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    root = tmp_path_factory.mktemp('tiny')
    cfg_path = root / 'tiny_frcnn_synthvoc.py'
    cfg_path.write_text(TINY_CONFIG.format(data_root=str(synthetic_voc_root) + '/'))
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    model.init_weights()
    ckpt = root / 'random.pth'
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, str(ckpt))
    return cfg_path, ckpt


@pytest.fixture
def count_evaluations(monkeypatch):
    calls = []
    real = robustness._evaluate

    def counting(runner, cfg, distortion, severity, seed):
        calls.append((distortion, severity))
        return real(runner, cfg, distortion, severity, seed)

    monkeypatch.setattr(robustness, '_evaluate', counting)
    return calls


def test_insert_distort_positions():
    voc = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=(1, 1)),
           dict(type='LoadAnnotations', with_bbox=True, with_mask=True), dict(type='PackDetInputs')]
    out = insert_distort(voc, 'jpeg', 2, seed=3)
    assert [t['type'] for t in out] == ['LoadImageFromFile', 'mmdet.Distort', 'Resize',
                                        'LoadAnnotations', 'PackDetInputs']
    assert out[1] == dict(type='mmdet.Distort', distortion='jpeg', severity=2, seed=3)
    assert len(voc) == 4  # the input is not modified
    # Boxes needed, annotations loaded after Resize: a box-only copy goes before Distort.
    out = insert_distort(voc, 'targeted_occlusion', 1)
    assert [t['type'] for t in out][:3] == ['LoadImageFromFile', 'LoadAnnotations',
                                            'mmdet.Distort']
    assert out[1]['with_bbox'] and not out[1]['with_mask']
    # Annotations already loaded before any resize: Distort simply follows them.
    train = [voc[0], voc[2], voc[1], voc[3]]
    out = insert_distort(train, 'targeted_occlusion', 1)
    assert [t['type'] for t in out] == ['LoadImageFromFile', 'LoadAnnotations', 'mmdet.Distort',
                                        'Resize', 'PackDetInputs']
    with pytest.raises(ValueError, match='no LoadImage'):
        insert_distort(voc[1:], 'jpeg', 1)
    with pytest.raises(ValueError, match='valid choices'):
        insert_distort(voc, 'blur', 1)


def test_summary_and_table():
    results = dict(config='c.py', checkpoint='x.pth', metric_key='pascal_voc/mAP',
                   clean={'pascal_voc/mAP': 0.8},
                   distorted={'jpeg': {'1': {'pascal_voc/mAP': 0.6}, '2': {'pascal_voc/mAP': 0.4}},
                              'ngrn': {'1': {'pascal_voc/mAP': 0.2}, '2': {'pascal_voc/mAP': 0.1}}})
    s = summarize(results)
    assert s['P'] == 0.8 and math.isclose(s['mPC'], 0.325) and math.isclose(s['rPC'], 0.40625)
    assert s['per_distortion'] == pytest.approx({'jpeg': 0.5, 'ngrn': 0.15})
    table = format_results_table(results)
    assert '| jpeg | 0.600 | 0.400 | 0.500 |' in table
    assert '| P (clean) | 0.800 |' in table and '| rPC = mPC / P | 40.6 % |' in table
    assert math.isnan(summarize(dict(results, clean={'pascal_voc/mAP': 0.0}))['rPC'])


def test_sweep_end_to_end_then_resume(tiny, tmp_path, count_evaluations, capsys):
    cfg_path, ckpt = tiny
    out_dir = tmp_path / 'robustness'
    kwargs = dict(distortions=['jpeg', 'targeted_occlusion'], severities=[1, 5])
    res = run_robustness_sweep(str(cfg_path), str(ckpt), str(out_dir), **kwargs)

    assert count_evaluations == [(None, 0), ('jpeg', 1), ('jpeg', 5), ('targeted_occlusion', 1),
                                 ('targeted_occlusion', 5)]
    on_disk = json.loads((out_dir / 'results.json').read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert res['metric_key'] == 'pascal_voc/mAP'
    assert set(res) == {'config', 'checkpoint', 'metric_key', 'clean', 'distorted', 'summary'}
    assert 'pascal_voc/mAP' in res['clean'] and 'pascal_voc/AP50' in res['clean']
    assert set(res['distorted']) == {'jpeg', 'targeted_occlusion'}
    assert set(res['distorted']['jpeg']) == {'1', '5'}
    assert set(res['summary']) == {'P', 'mPC', 'rPC', 'per_distortion'}
    md = (out_dir / 'results.md').read_text()
    assert '| jpeg |' in md and '| targeted_occlusion |' in md and 'rPC' in md
    printed = capsys.readouterr().out
    assert 'pair 1/5: clean' in printed and 'pair 5/5: targeted_occlusion 5' in printed
    assert md in printed

    # Same sweep again: everything is in results.json, nothing is evaluated.
    count_evaluations.clear()
    again = run_robustness_sweep(str(cfg_path), str(ckpt), str(out_dir), **kwargs)
    assert count_evaluations == []
    assert again['distorted'] == res['distorted'] and again['clean'] == res['clean']
    assert 'pair 3/5: jpeg 5 (in results.json, skipped)' in capsys.readouterr().out

    # An interrupted sweep: drop one pair, add a severity; only the missing pairs run.
    on_disk['distorted']['jpeg'].pop('5')
    (out_dir / 'results.json').write_text(json.dumps(on_disk))
    count_evaluations.clear()
    more = run_robustness_sweep(str(cfg_path), str(ckpt), str(out_dir),
                                distortions=['jpeg'], severities=[1, 3, 5])
    assert count_evaluations == [('jpeg', 3), ('jpeg', 5)]
    assert set(more['distorted']['jpeg']) == {'1', '3', '5'}

    other = tmp_path / 'other.pth'
    other.write_bytes(ckpt.read_bytes())
    with pytest.raises(ValueError, match='not .*another out_dir'):
        run_robustness_sweep(str(cfg_path), str(other), str(out_dir))


def _load_tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'test_robustness_cli', repo_root / 'tools' / 'test_robustness.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_runs_and_rejects_unknown_distortion(tiny, tmp_path, repo_root, capsys):
    tool = _load_tool(repo_root)
    cfg_path, ckpt = tiny
    with pytest.raises(SystemExit, match='valid choices: motion_blur, jpeg'):
        tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', 'fogg'])
    with pytest.raises(SystemExit, match='valid choices: 1, 2, 3, 4, 5'):
        tool.main([str(cfg_path), str(ckpt), '--severities', '7'])
    res = tool.main([str(cfg_path), str(ckpt), '--distortions', 'ngrn', '--severities', '2',
                     '--out-dir', str(tmp_path / 'cli'), '--cfg-options',
                     'test_dataloader.batch_size=4'])
    assert set(res['distorted']) == {'ngrn'} and (tmp_path / 'cli' / 'results.md').is_file()
