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


class _Calls(list):
    control = None


@pytest.fixture
def evaluations(monkeypatch):
    """The (distortion, severity) pairs evaluated; set ``interrupt_after`` to stop a sweep."""
    calls = _Calls()
    real = robustness._evaluate

    def counting(runner, cfg, distortion, severity, seed):
        if len(calls) == counting.interrupt_after:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-sweep
        calls.append((distortion, severity))
        return real(runner, cfg, distortion, severity, seed)

    counting.interrupt_after = None
    monkeypatch.setattr(robustness, '_evaluate', counting)
    calls.control = counting
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


def test_sweep_end_to_end_interrupted_resumed(tiny, tmp_path, repo_root, evaluations, capsys):
    cfg_path, ckpt = tiny
    out_dir = tmp_path / 'robustness'
    kwargs = dict(distortions=['jpeg', 'targeted_occlusion'], severities=[1, 5])

    # Interrupted after three of the five pairs: those three are on disk.
    evaluations.control.interrupt_after = 3
    with pytest.raises(KeyboardInterrupt):
        run_robustness_sweep(str(cfg_path), str(ckpt), str(out_dir), **kwargs)
    assert evaluations == [(None, 0), ('jpeg', 1), ('jpeg', 5)]
    partial = json.loads((out_dir / 'results.json').read_text())
    assert 'pascal_voc/mAP' in partial['clean'] and 'pascal_voc/AP50' in partial['clean']
    assert partial['distorted'] == {'jpeg': {'1': partial['distorted']['jpeg']['1'],
                                             '5': partial['distorted']['jpeg']['5']}}
    printed = capsys.readouterr().out
    assert 'pair 1/5: clean' in printed and 'pair 3/5: jpeg 5' in printed

    # The rerun evaluates only the two missing pairs.
    evaluations.clear()
    evaluations.control.interrupt_after = None
    res = run_robustness_sweep(str(cfg_path), str(ckpt), str(out_dir), **kwargs)
    assert evaluations == [('targeted_occlusion', 1), ('targeted_occlusion', 5)]
    printed = capsys.readouterr().out
    assert 'pair 3/5: jpeg 5 (in results.json, skipped)' in printed
    assert 'pair 5/5: targeted_occlusion 5' in printed

    on_disk = json.loads((out_dir / 'results.json').read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert set(res) == {'config', 'checkpoint', 'metric_key', 'clean', 'distorted', 'summary'}
    assert res['metric_key'] == 'pascal_voc/mAP' and res['clean'] == partial['clean']
    assert {d: set(v) for d, v in res['distorted'].items()} == \
        {'jpeg': {'1', '5'}, 'targeted_occlusion': {'1', '5'}}
    assert set(res['summary']) == {'P', 'mPC', 'rPC', 'per_distortion'}
    values = [m['pascal_voc/mAP'] for v in res['distorted'].values() for m in v.values()]
    assert res['summary']['mPC'] == pytest.approx(sum(values) / 4)
    md = (out_dir / 'results.md').read_text()
    assert '| jpeg |' in md and '| targeted_occlusion |' in md and 'rPC' in md
    assert md in printed

    # Everything done: nothing is built or evaluated, the table is printed again.
    evaluations.clear()
    again = run_robustness_sweep(str(cfg_path), str(ckpt), str(out_dir), **kwargs)
    assert evaluations == [] and again == res

    # Results of another checkpoint are never mixed in.
    other = tmp_path / 'other.pth'
    other.write_bytes(ckpt.read_bytes())
    with pytest.raises(ValueError, match='not .*another out_dir'):
        run_robustness_sweep(str(cfg_path), str(other), str(out_dir))

    # The CLI over the same out-dir: its flags reach the sweep (all pairs already done).
    tool = _load_tool(repo_root)
    res_cli = tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', 'targeted_occlusion',
                         '--severities', '5', '--out-dir', str(out_dir),
                         '--cfg-options', 'test_dataloader.batch_size=4'])
    assert evaluations == [] and res_cli['distorted'] == res['distorted']


def _load_tool(repo_root):
    spec = importlib.util.spec_from_file_location(
        'test_robustness_cli', repo_root / 'tools' / 'test_robustness.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_rejects_unknown_distortion_and_severity(tiny, repo_root):
    tool = _load_tool(repo_root)
    cfg_path, ckpt = tiny
    with pytest.raises(SystemExit, match='valid choices: motion_blur, jpeg'):
        tool.main([str(cfg_path), str(ckpt), '--distortions', 'jpeg', 'fogg'])
    with pytest.raises(SystemExit, match='valid choices: 1, 2, 3, 4, 5'):
        tool.main([str(cfg_path), str(ckpt), '--severities', '7'])
    with pytest.raises(SystemExit, match='checkpoint not found'):
        tool.main([str(cfg_path), str(ckpt) + '.missing'])
