"""COCO-format data end to end: the synthetic generator's COCO layout, the sweep with
MMDetection's CocoMetric (BN adaptation, per-image records, an exported COCO-C set), and
the image bootstrap's COCO mAP against pycocotools."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

import fq_det  # noqa: F401
from fq_det.evaluation import load_per_image
from fq_det.evaluation.per_image import map_of_subset
from fq_det.evaluation.robustness import run_sweep

COCO_CONFIG = """
_base_ = {base!r}
data_root = {data_root!r}
test_dataloader = dict(dataset=dict(
    _delete_=True, type='CocoDataset', data_root=data_root, metainfo=dict(classes={classes!r}),
    ann_file='annotations/instances_test.json', data_prefix=dict(img='test/'), test_mode=True,
    pipeline={{{{_base_.test_pipeline}}}}))
val_dataloader = test_dataloader
test_evaluator = dict(_delete_=True, type='CocoMetric', metric='bbox',
                      ann_file=data_root + 'annotations/instances_test.json')
val_evaluator = test_evaluator
model = dict(test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=100)))
"""
PAIRS = dict(distortions=['c:defocus_blur'], severities=[3])


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory, repo_root):
    """The session's tiny synthetic set (seed 0, 8 + 4 images, 160x120) in the COCO layout,
    written by the command-line tool."""
    root = tmp_path_factory.mktemp('synthcoco')
    subprocess.run([sys.executable, str(repo_root / 'tools/misc/make_synthetic_voc.py'), '--out',
                    str(root), '--num-train', '8', '--num-test', '4', '--size', '160', '120',
                    '--format', 'coco', '--workers', '1'], check=True, capture_output=True)
    return root


@pytest.fixture(scope='module')
def coco_config(coco_root, tiny_detector, tmp_path_factory):
    path = tmp_path_factory.mktemp('coco_cfg') / 'tiny_faster_rcnn_coco.py'
    path.write_text(COCO_CONFIG.format(base=str(tiny_detector.config), data_root=str(coco_root) + '/',
                                       classes=tiny_detector.classes))
    return path


def _instances(dataset_cfg: dict, offset: float = 0.0) -> dict:
    """``{img_id: sorted (box, label, ignore)}``, ``offset`` added to x2 and y2."""
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    ds = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    out = {}
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        out[int(info['img_id'])] = sorted(
            (tuple(float(v) + offset * (k >= 2) for k, v in enumerate(inst['bbox'])),
             inst['bbox_label'], inst['ignore_flag']) for inst in info['instances'])
    return out


def test_coco_layout_holds_the_voc_sets_objects(coco_root, coco_config, tiny_detector):
    """Same seed: the same images, and mmdet reads boxes of the same pixels, the same labels
    and ignore flags from the COCO JSON as from the VOC XML (difficult = iscrowd; VOC boxes
    are inclusive, x1 - x0 + 1 wide, COCO ones x1 - x0)."""
    data = json.loads((coco_root / 'annotations' / 'instances_test.json').read_text())
    assert [c['name'] for c in data['categories']] == list(tiny_detector.classes)
    assert [im['file_name'] for im in data['images']] == \
        ['000009.jpg', '000010.jpg', '000011.jpg', '000012.jpg']
    assert (coco_root / 'trainval' / '000001.jpg').is_file()
    voc_cfg = Config.fromfile(str(tiny_detector.config))
    coco_cfg = Config.fromfile(str(coco_config))
    voc = _instances(voc_cfg.test_dataloader.dataset.to_dict(), offset=1.0)
    coco = _instances(coco_cfg.test_dataloader.dataset.to_dict())
    assert voc == coco and sum(len(v) for v in coco.values()) > 4
    voc_img = (voc_cfg.data_root + 'VOC2007/JPEGImages/000009.jpg')
    assert (coco_root / 'test' / '000009.jpg').read_bytes() == open(voc_img, 'rb').read()


def test_data_root_moves_the_coco_metrics_annotation_file(coco_config, tmp_path):
    from fq_det.datasets.data_check import set_data_root
    from fq_det.evaluation.sweep_store import data_identity
    cfg = Config.fromfile(str(coco_config))
    assert len(data_identity(cfg)[0]['content_sha256']) == 64  # COCO sets get a content digest
    set_data_root(cfg, str(tmp_path / 'elsewhere'))
    assert cfg.test_evaluator.ann_file == str(tmp_path / 'elsewhere') + \
        '/annotations/instances_test.json'
    assert cfg.test_dataloader.dataset.data_root == str(tmp_path / 'elsewhere') + '/'


def _pycocotools_map(rec: dict, gt_file, indices) -> tuple[float, float]:
    """COCOeval's (mAP, AP50) of the images ``indices`` (repeats as renamed copies)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    source = json.loads(open(gt_file).read())
    anns = {}
    for a in source['annotations']:
        anns.setdefault(a['image_id'], []).append(a)
    images, gts, dets = [], [], []
    cat_ids = [c['id'] for c in source['categories']]
    for j, i in enumerate(indices, start=1):
        img_id = int(rec['img_ids'][i])
        images.append(dict(id=j, width=160, height=120, file_name=f'{j}.jpg'))
        gts += [dict(a, id=len(gts) + k + 1, image_id=j)
                for k, a in enumerate(anns.get(img_id, []))]
        lo, hi = rec['pred_offsets'][i], rec['pred_offsets'][i + 1]
        for box, score, label in zip(rec['pred_bboxes'][lo:hi], rec['pred_scores'][lo:hi],
                                     rec['pred_labels'][lo:hi]):
            x1, y1, x2, y2 = box.tolist()
            dets.append(dict(image_id=j, bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score),
                             category_id=cat_ids[label]))
    coco = COCO()
    coco.dataset = dict(images=images, annotations=gts, categories=source['categories'])
    coco.createIndex()
    evaluator = COCOeval(coco, coco.loadRes(dets), 'bbox')
    evaluator.params.maxDets = [100, 300, 1000]  # as mmdet's CocoMetric sets them
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1])


def test_coco_sweep_end_to_end(coco_config, coco_root, tiny_detector, tmp_path):
    """Sweep with CocoMetric: plain and BN-adapted, per-image records, their COCO mAP
    equal to CocoMetric's and to pycocotools' on a resampled image set, the image
    bootstrap between the two, and an exported COCO-C set giving the same numbers."""
    from fq_det.engine.bn_adapt import add_bn_adapt_hook
    from fq_det.evaluation.corrupted_sets import export_corrupted
    from fq_det.studies.records import sweep_bootstrap
    ckpt = str(tiny_detector.checkpoint)
    cfg = Config.fromfile(str(coco_config))
    plain = run_sweep('detection', cfg, ckpt, str(tmp_path / 'plain'), save_per_image=True, **PAIRS)
    assert plain['metric_key'] == 'coco/bbox_mAP'
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50'} <= set(plain['clean'])
    bn_cfg = Config.fromfile(str(coco_config))
    add_bn_adapt_hook(bn_cfg, 0.0, 4)
    bn = run_sweep('detection', bn_cfg, ckpt, str(tmp_path / 'bn'), save_per_image=True, **PAIRS)
    assert bn['clean'] != plain['clean']  # adapting the BN statistics changes the detections

    gt_file = coco_root / 'annotations' / 'instances_test.json'
    for name, metrics in (('clean', plain['clean']),
                          ('c:defocus_blur_s3', plain['distorted']['c:defocus_blur']['3'])):
        rec = load_per_image(str(tmp_path / 'plain' / 'per_image' / f'{name}.npz'))
        assert str(rec['eval_mode']) == 'coco' and int(rec['max_dets']) == 100
        everything = np.arange(len(rec['img_ids']))
        # CocoMetric rounds its values to 3 decimals
        assert map_of_subset(rec, everything) == pytest.approx(metrics['coco/bbox_mAP'], abs=5e-4)
        assert map_of_subset(rec, everything, iou=0.5) == pytest.approx(
            metrics['coco/bbox_mAP_50'], abs=5e-4)
        sample = [0, 0, 2, 3, 3, 3]
        ref_map, ref_ap50 = _pycocotools_map(rec, gt_file, sample)
        assert map_of_subset(rec, sample) == pytest.approx(ref_map, abs=1e-9)
        assert map_of_subset(rec, sample, iou=0.5) == pytest.approx(ref_ap50, abs=1e-9)

    boot = sweep_bootstrap({'plain': str(tmp_path / 'plain'), 'bn': str(tmp_path / 'bn')},
                           'plain', 'detection', PAIRS['distortions'], PAIRS['severities'],
                           replicates=20)
    assert set(boot['bn']) == {'P', 'c:defocus_blur', 'mPC', 'rPC'}
    assert boot['bn']['P']['mean'] == pytest.approx(  # the point estimate, from the records
        bn['clean']['coco/bbox_mAP'] - plain['clean']['coco/bbox_mAP'], abs=1e-3)
    assert boot['bn']['P']['low'] <= boot['bn']['P']['mean'] <= boot['bn']['P']['high']

    export_corrupted(cfg, str(tmp_path / 'coco-c'), **PAIRS)
    assert (tmp_path / 'coco-c' / 'c-defocus_blur' / '3' / 'annotations' /
            'instances_test.json').is_file()
    read = run_sweep('detection', cfg, ckpt, str(tmp_path / 'read'),
                                corrupted_root=str(tmp_path / 'coco-c'), **PAIRS)
    assert read['distorted'] == plain['distorted'] and read['clean'] == plain['clean']


def test_coco_map_equals_pycocotools_with_crowds_and_many_detections():
    """Random scenes with crowd boxes, near-duplicate detections, a few boxes of negative
    width (COCOeval ignores them unless matched) and more than 100 detections of a class
    in an image: the records' COCO mAP and AP50 equal COCOeval's."""
    import contextlib
    import io
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from fq_det.evaluation.detection_ap import coco_detection_records, coco_map
    rng = np.random.default_rng(3)
    images, gts, dets, items = [], [], [], []
    for i in range(6):
        n_gt = int(rng.integers(1, 6))
        xy = rng.uniform(0, 150, (n_gt, 2))
        gt = np.hstack([xy, xy + rng.uniform(10, 60, (n_gt, 2))])
        gt_labels, crowd = rng.integers(0, 3, n_gt), rng.random(n_gt) < 0.25
        n_det = 130 if i == 0 else int(rng.integers(0, 30))
        src = rng.integers(0, n_gt, n_det)
        det = gt[src] + rng.normal(0, 6, (n_det, 4))
        labels = np.where(rng.random(n_det) < 0.8, gt_labels[src], rng.integers(0, 3, n_det))
        labels[:120 if i == 0 else 0] = 0  # > 100 detections of class 0 in image 0
        scores = rng.random(n_det)
        items.append(dict(bboxes=det, scores=scores, labels=labels, gt_bboxes=gt,
                          gt_labels=gt_labels, gt_ignore=crowd))
        images.append(dict(id=i + 1, width=300, height=300))
        for k, (b, c, cr) in enumerate(zip(gt, gt_labels, crowd)):
            gts.append(dict(id=len(gts) + 1, image_id=i + 1, category_id=int(c) + 1,
                            bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]],
                            area=float((b[2] - b[0]) * (b[3] - b[1])), iscrowd=int(cr)))
        dets += [dict(image_id=i + 1, category_id=int(c) + 1, score=float(s),
                      bbox=[b[0], b[1], b[2] - b[0], b[3] - b[1]])
                 for b, c, s in zip(det.tolist(), labels, scores)]
    coco = COCO()
    coco.dataset = dict(images=images, annotations=gts,
                        categories=[dict(id=k + 1, name=str(k)) for k in range(3)])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(dets), 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    records = coco_detection_records(items, num_classes=3, max_dets=100)
    assert any((it['bboxes'][:, 2] < it['bboxes'][:, 0]).any() for it in items)
    assert (records.tp[:, 0] > 0).sum() > 5 and items[0]['gt_ignore'].size
    assert coco_map(records) == pytest.approx(evaluator.stats[0], abs=1e-12)
    # AP50: COCOeval's default maxDets (1, 10, 100) count 100 per image and class here too
    assert coco_map(records, iou=0.5) == pytest.approx(evaluator.stats[1], abs=1e-12)


@pytest.mark.slow
def test_a_detection_study_on_coco_format_data(tmp_path, repo_root):
    """A study on the synthetic COCO-format set: trains, sweeps with CocoMetric, and its
    report carries coco/bbox_mAP with the image bootstrap between two variants."""
    from fq_det.studies import load_study, report_study, run_study
    config = str(repo_root / 'configs/synthcoco/faster_rcnn_r18_synthcoco.py')
    study = dict(task='detection',
                 data=dict(type='synthcoco', num_train=4, num_test=3, image_size=(96, 72), seed=0),
                 variants=dict(plain=dict(config=config),
                               plain_bn=dict(train_as='plain',
                                             bn_adapt=dict(prior_strength=0, num_images=3))),
                 reference='plain', seeds=[0], distortions=['c:contrast'], severities=[3],
                 train=dict(iters=2), bootstrap=dict(replicates=20))
    path = tmp_path / 'coco_study.py'
    path.write_text(f'study = {study!r}\n')
    loaded = load_study(str(path), str(tmp_path / 'work'))
    assert run_study(loaded, jobs=1) == []
    assert (tmp_path / 'work' / 'data' / 'annotations' / 'instances_test.json').is_file()
    report = report_study(loaded)
    assert report['metric_key'] == 'coco/bbox_mAP'
    md = next((tmp_path / 'work').rglob('study.md')).read_text()
    assert 'metric `coco/bbox_mAP`' in md and 'synthetic set in the COCO layout' in md
    assert 'paired image bootstrap' in md and '| plain_bn | ± ' in md


def test_the_coco_config_reads_the_coco_layout(coco_root, repo_root):
    """configs/synthcoco/: CocoDataset for both splits and CocoMetric, read from --data-root."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from fq_det.datasets.data_check import set_data_root
    from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(repo_root / 'configs/synthcoco/faster_rcnn_r18_synthcoco.py'))
    assert cfg.train_dataloader.dataset.type == cfg.test_dataloader.dataset.type == 'CocoDataset'
    assert cfg.test_evaluator.type == 'CocoMetric' and cfg.test_evaluator.metric == 'bbox'
    assert tuple(cfg.metainfo.classes) == SYNTH_CLASSES
    set_data_root(cfg, str(coco_root))
    assert cfg.test_evaluator.ann_file == f'{coco_root}/annotations/instances_test.json'
    train = DATASETS.build(cfg.train_dataloader.dataset)
    test = DATASETS.build(cfg.test_dataloader.dataset)
    assert (len(train), len(test)) == (8, 4)
    assert len(train[0]['data_samples'].gt_instances) > 0
