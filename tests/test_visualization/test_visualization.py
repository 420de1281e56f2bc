"""Detection grid (demo/image_demo.py) and robustness plots (tools/analysis/plot_robustness.py)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import load_script, read_png
CLASSES = ('circle', 'square', 'triangle', 'cross', 'star')




def _test_images(root: Path, n: int) -> list[str]:
    return [str(p) for p in sorted((root / 'VOC2007' / 'JPEGImages').glob('*.jpg'))[:n]]


def test_image_demo_grid(tiny_detector, synthetic_voc_root, tmp_path):
    cfg, ckpt = tiny_detector
    images = _test_images(synthetic_voc_root, 2)
    demo = load_script('demo/image_demo.py')
    out = demo.main([*images, str(cfg), str(ckpt), '--distortions', 'jpeg', 'targeted_occlusion',
                     '--severities', '5', '--score-thr', '0.0', '--cell-px', '160',
                     '--occlude-detections', '--out', str(tmp_path / 'grid.png')])
    img = read_png(out['figure'])
    # 3 columns (original, jpeg 5, occlusion 5) of 160 px + the row-label margin; 2 rows
    assert img.shape[1] == out['size'][0] == int(round(0.25 * 100)) + 3 * 160
    assert img.shape[0] == out['size'][1] == int(round(30 + 2 * 160 * 120 / 160))
    assert img.std() > 10
    records = json.loads(out['json'].read_text())['results']
    assert [(r['distortion'], r['severity']) for r in records] == \
        [('clean', 0), ('jpeg', 5), ('targeted_occlusion', 5)] * 2
    dets = [d for r in records for d in r['detections']]
    assert dets and all(d['class_name'] in CLASSES and len(d['bbox']) == 4 for d in dets)
    occ = [r for r in records if r['distortion'] == 'targeted_occlusion']
    assert all(r['occlusion_boxes_from'] == 'clean detections' for r in occ)


def test_image_demo_checks_arguments_before_loading_the_model(tiny_detector, synthetic_voc_root,
                                                              tmp_path, capsys, monkeypatch):
    import mmdet.apis
    cfg, ckpt = tiny_detector
    images = _test_images(synthetic_voc_root, 1)
    demo = load_script('demo/image_demo.py')
    monkeypatch.setattr(mmdet.apis, 'init_detector',
                        lambda *a, **k: pytest.fail('the model was loaded before the check'))
    base = [*images, str(cfg), str(ckpt), '--out', str(tmp_path / 'g.png')]
    with pytest.raises(SystemExit):
        demo.main(base + ['--distortions', 'blur'])
    assert 'valid choices: motion_blur, jpeg' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main(base + ['--severities', '9'])
    assert 'valid choices: 1, 2, 3, 4, 5' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main(base + ['--cell-px', '0'])
    assert 'positive number of pixels' in capsys.readouterr().err
    # Targeted occlusion needs the objects: no silent switch to detections as boxes.
    with pytest.raises(SystemExit, match='needs the objects to occlude: pass --ann-dir'):
        demo.main(base + ['--distortions', 'targeted_occlusion'])
    with pytest.raises(SystemExit, match=r'\.xml not found'):
        demo.main(base + ['--distortions', 'targeted_occlusion', '--ann-dir', str(tmp_path)])


@pytest.mark.parametrize('kind,needle', [
    ('truncated.jpg', 'is truncated or corrupt (image file is truncated'),
    ('truncated.png', 'is truncated or corrupt'),
    ('notes.jpg', 'is not an image (no image format recognised'),
    ('empty.jpg', 'is empty (0 bytes), not an image')])
def test_image_demo_names_a_broken_image_before_loading_the_model(
        kind, needle, tiny_detector, synthetic_voc_root, tmp_path, capsys, monkeypatch):
    """OpenCV reads a truncated JPEG without an error (grey rows): the demo refuses it."""
    import cv2
    import mmdet.apis
    cfg, ckpt = tiny_detector
    good = _test_images(synthetic_voc_root, 1)[0]
    data = {'truncated.jpg': Path(good).read_bytes()[:-200],
            'truncated.png': cv2.imencode('.png', cv2.imread(good))[1].tobytes()[:-20],
            'notes.jpg': b'not an image', 'empty.jpg': b''}[kind]
    bad = tmp_path / kind
    bad.write_bytes(data)
    if kind == 'truncated.jpg':
        assert cv2.imread(str(bad)) is not None  # what the check is for
    monkeypatch.setattr(mmdet.apis, 'init_detector',
                        lambda *a, **k: pytest.fail('the model was loaded before the check'))
    demo = load_script('demo/image_demo.py')
    with pytest.raises(SystemExit) as exit_info:
        demo.main([good, str(bad), str(cfg), str(ckpt), '--out', str(tmp_path / 'g.png')])
    assert exit_info.value.code == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith('error: ')]
    assert len(errors) == 1 and str(bad) in errors[0] and needle in errors[0], errors
    assert not (tmp_path / 'g.png').exists()


def test_image_demo_names_an_unreadable_checkpoint(tiny_detector, synthetic_voc_root, tmp_path,
                                                   capsys):
    cfg, _ = tiny_detector
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    demo = load_script('demo/image_demo.py')
    with pytest.raises(SystemExit) as exit_info:
        demo.main([*_test_images(synthetic_voc_root, 1), str(cfg), str(text),
                   '--out', str(tmp_path / 'g.png')])
    assert exit_info.value.code == 2
    assert f'error: checkpoint {text} is not a checkpoint' in capsys.readouterr().err


def test_detection_grid_draws_boxes_and_is_deterministic(tiny_detector, synthetic_voc_root, tmp_path):
    from mmdet.apis import init_detector

    from fq_det.visualization import draw_detection_grid, read_voc_boxes
    cfg, ckpt = tiny_detector
    model = init_detector(str(cfg), str(ckpt), device='cpu')
    images = _test_images(synthetic_voc_root, 1)
    xml = synthetic_voc_root / 'VOC2007' / 'Annotations' / (Path(images[0]).stem + '.xml')
    gt = {images[0]: read_voc_boxes(xml)}
    assert gt[images[0]].shape[1] == 4 and len(gt[images[0]]) >= 1
    conds = [('clean', 0), ('salt_pepper', 3), ('targeted_occlusion', 2)]
    kw = dict(boxes=gt, cell_px=128, progress=False)
    a = draw_detection_grid(model, images, conds, tmp_path / 'a.png', score_thr=0.0, **kw)
    b = draw_detection_grid(model, images, conds, tmp_path / 'b.png', score_thr=0.0, **kw)
    none = draw_detection_grid(model, images, conds, tmp_path / 'none.png', score_thr=1.0, **kw)
    assert np.array_equal(read_png(a['figure']), read_png(b['figure']))  # seeded distortions
    assert not np.array_equal(read_png(a['figure']), read_png(none['figure']))  # boxes were drawn
    recs = json.loads(a['json'].read_text())['results']
    assert recs[2]['occlusion_boxes_from'] == 'annotations'
    assert all(not r['detections'] for r in json.loads(none['json'].read_text())['results'])


def test_detection_grid_rejects_bad_conditions(tiny_detector, synthetic_voc_root, tmp_path):
    from fq_det.visualization.detection_grid import check_conditions
    with pytest.raises(ValueError, match='valid choices'):
        check_conditions([('clean', 0), ('fog_of_war', 1)])
    with pytest.raises(ValueError, match='severity'):
        check_conditions([('jpeg', 9)])
    with pytest.raises(ValueError, match='empty'):
        check_conditions([])


# ---- robustness plots ---------------------------------------------------------------
def _results(scale: float, distortions=('jpeg', 'ngrn', 'motion_blur')) -> dict:
    key = 'pascal_voc/mAP'
    clean = 0.8 * scale
    distorted = {d: {str(s): {key: clean * (1 - 0.12 * s - 0.02 * i)} for s in range(1, 6)}
                 for i, d in enumerate(distortions)}
    vals = [v[key] for d in distorted.values() for v in d.values()]
    mpc = float(np.mean(vals))
    return {'config': 'x.py', 'checkpoint': 'x.pth', 'metric_key': key, 'clean': {key: clean},
            'distorted': distorted,
            'summary': {'P': clean, 'mPC': mpc, 'rPC': mpc / clean,
                        'per_distortion': {d: float(np.mean([v[key] for v in distorted[d].values()]))
                                           for d in distorted}}}


def test_plot_robustness_tool(tmp_path):
    files = []
    for name, scale in (('base', 1.0), ('pow', 0.9)):
        (tmp_path / name).mkdir()
        files.append(tmp_path / name / 'results.json')
        files[-1].write_text(json.dumps(_results(scale)))
    tool = load_script('tools/analysis/plot_robustness.py')
    out = tool.main([*map(str, files), '--out', str(tmp_path / 'rob.png'), '--ncols', '3'])
    img = read_png(out['figure'])
    # 3 distortions + mPC + rPC = 5 panels -> 2 rows x 3 columns of 3.2 x 2.6 inches at 100 dpi
    assert img.shape[:2] == (520, 960)
    assert img.std() > 10
    with open(out['csv']) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 6 + 2 * 3  # models x distortions x (clean + 5), + P/mPC/rPC
    assert {r['model'] for r in rows} == {'base', 'pow'}  # labels default to folder names
    clean = [r for r in rows if r['model'] == 'base' and r['distortion'] == 'jpeg' and r['severity'] == '0']
    assert float(clean[0]['value']) == pytest.approx(0.8)
    rpc = [r for r in rows if r['model'] == 'pow' and r['metric'] == 'rPC']
    assert float(rpc[0]['value']) == pytest.approx(_results(0.9)['summary']['rPC'])
    # A truncated or missing results.json is named, not a traceback.
    files[1].write_text(files[1].read_text()[:50])
    with pytest.raises(SystemExit, match=r'error: .*pow/results\.json is not valid JSON'):
        tool.main([*map(str, files), '--out', str(tmp_path / 'rob2.png')])
    with pytest.raises(SystemExit, match=r'error: .*nothing\.json: no such results file'):
        tool.main([str(tmp_path / 'nothing.json'), '--out', str(tmp_path / 'rob3.png')])


def test_plot_robustness_checks_input(tmp_path):
    from fq_det.visualization import plot_robustness
    with pytest.raises(ValueError, match='labels'):
        plot_robustness([_results(1.0)], ['a', 'b'], tmp_path / 'x.png')
    with pytest.raises(ValueError, match='missing'):
        plot_robustness([{'clean': {}}], ['a'], tmp_path / 'x.png')
    # a summary-less file still plots: mPC / rPC are recomputed from the raw numbers
    r = _results(1.0)
    del r['summary']
    out = plot_robustness([r], ['a'], tmp_path / 'y.png')
    rows = list(csv.DictReader(open(out['csv'])))
    assert float([x for x in rows if x['metric'] == 'rPC'][0]['value']) == \
        pytest.approx(_results(1.0)['summary']['rPC'])
