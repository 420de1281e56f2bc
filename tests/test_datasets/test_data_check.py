"""The data check run before training, testing and sweeping: every problem names its file."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import fq_det  # noqa: F401
from fq_det.datasets.data_check import DataCheckError, DataNotFoundError, check_data, set_data_root
from fq_det.datasets.synthetic_voc import SYNTH_CLASSES
from helpers import mmdet_voc_faster_rcnn_config


@pytest.fixture
def voc(synthetic_voc_root, tmp_path) -> Path:
    """A private copy of the synthetic VOC set (tests change its files)."""
    root = tmp_path / 'voc'
    shutil.copytree(synthetic_voc_root, root)
    return root


def _cfg(root: Path, classes=SYNTH_CLASSES):
    from mmengine.config import Config
    cfg = Config.fromfile(mmdet_voc_faster_rcnn_config())
    set_data_root(cfg, str(root))
    if classes is not None:
        cfg.test_dataloader.dataset.metainfo = dict(classes=classes)
    return cfg


def _test_ids(root: Path) -> list[str]:
    return (root / 'VOC2007/ImageSets/Main/test.txt').read_text().split()


def _set_box(root: Path, img_id: str, index: int, **coords) -> Path:
    xml = root / 'VOC2007/Annotations' / f'{img_id}.xml'
    tree = ET.parse(xml)
    box = tree.getroot().findall('object')[index].find('bndbox')
    for k, v in coords.items():
        box.find(k).text = str(v)
    tree.write(xml)
    return xml


def test_a_valid_set_passes(voc, recwarn):
    cfg = _cfg(voc)
    check_data(cfg, ('test', ))
    assert not [w for w in recwarn if 'invalid box' in str(w.message)]
    assert 'ClipGtBoxes' not in str(cfg.test_dataloader.dataset.pipeline)


def test_invalid_boxes_are_listed_with_file_and_object(voc):
    a, b = _test_ids(voc)[:2]
    xml_a = _set_box(voc, a, 0, xmin=120, xmax=30)  # reversed
    xml_b = _set_box(voc, b, 0, xmax=900)  # outside the 160-wide image
    with pytest.raises(DataCheckError) as err:
        check_data(_cfg(voc), ('test', ))
    msg = str(err.value)
    assert '2 invalid box(es) in the test annotations' in msg
    assert f'{xml_a}: object 0' in msg and 'xmin > xmax' in msg
    assert f'{xml_b}: object 0' in msg and 'outside the 160x120 image' in msg
    assert 'data_check.invalid_boxes=clip' in msg
    assert isinstance(err.value, DataNotFoundError)  # the tools already report that type


def test_clip_mode_clips_with_a_warning(voc):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    a, b = _test_ids(voc)[:2]
    _set_box(voc, a, 0, xmin=120, xmax=30)
    _set_box(voc, b, 0, xmax=900)
    cfg = _cfg(voc)
    cfg.data_check = dict(invalid_boxes='clip')  # --cfg-options data_check.invalid_boxes=clip
    with pytest.warns(UserWarning, match=r'2 invalid box\(es\)[\s\S]*clipped to the image'):
        check_data(cfg, ('test', ))
    names = [t['type'] for t in cfg.test_dataloader.dataset.pipeline]
    assert names[names.index('LoadAnnotations') + 1] == 'mmdet.ClipGtBoxes'
    init_default_scope('mmdet')
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    ids = [ds.get_data_info(i)['img_id'] for i in range(len(ds))]
    raw_a = len(ds.get_data_info(ids.index(a))['instances'])
    item_a, item_b = ds[ids.index(a)], ds[ids.index(b)]
    boxes_b = item_b['data_samples'].gt_instances.bboxes.tensor.numpy()
    assert boxes_b[:, 2].max() <= 160 and (boxes_b[:, 2] >= boxes_b[:, 0]).all()
    n_a = len(item_a['data_samples'].gt_instances) + len(item_a['data_samples'].ignored_instances)
    assert n_a == raw_a - 1  # the reversed box was dropped
    with pytest.raises(ValueError, match='must be one of error, clip'):
        check_data(cfg, ('test', ), invalid_boxes='fix')


def test_broken_files_are_named(voc):
    ids = _test_ids(voc)
    img = voc / 'VOC2007/JPEGImages' / f'{ids[0]}.jpg'
    img.write_bytes(b'')
    with pytest.raises(DataCheckError, match=rf'{img}.*0 bytes'):
        check_data(_cfg(voc), ('test', ))
    img.write_bytes(b'this is no JPEG')
    with pytest.raises(DataCheckError, match=rf'{img} is not a readable image'):
        check_data(_cfg(voc), ('test', ))
    shutil.copy(voc / 'VOC2007/JPEGImages' / f'{ids[1]}.jpg', img)
    xml = voc / 'VOC2007/Annotations' / f'{ids[2]}.xml'
    xml.write_text(xml.read_text()[:60])
    with pytest.raises(DataCheckError, match=rf'{xml}: not a readable VOC annotation file'):
        check_data(_cfg(voc), ('test', ))
    (voc / 'VOC2007/ImageSets/Main/test.txt').write_text('\n')
    with pytest.raises(DataCheckError, match=r'test image list .*test\.txt is empty'):
        check_data(_cfg(voc), ('test', ))


def test_a_truncated_image_is_named_and_extra_bytes_after_the_end_pass(voc, recwarn):
    """A JPEG cut short opens (its header is intact) and mmcv then fails on it mid-sweep
    (or OpenCV fills the missing rows grey); the check decodes a file that does not end
    with the JPEG end marker, so bytes some cameras append after it still pass."""
    import cv2
    ids = _test_ids(voc)
    img = voc / 'VOC2007/JPEGImages' / f'{ids[0]}.jpg'
    whole = img.read_bytes()
    img.write_bytes(whole + b'camera metadata after the end marker')
    check_data(_cfg(voc), ('test', ))
    img.write_bytes(whole[:len(whole) * 2 // 3])
    with pytest.raises(DataCheckError, match=rf'{img} is truncated or corrupt \(image file is '
                                             'truncated'):
        check_data(_cfg(voc), ('test', ))
    png = cv2.imencode('.png', cv2.imdecode(np.frombuffer(whole, np.uint8), cv2.IMREAD_COLOR))[1]
    img.write_bytes(png.tobytes()[:-20])  # a PNG under a .jpg name, without its end chunk
    with pytest.raises(DataCheckError, match=rf'{img} is truncated or corrupt'):
        check_data(_cfg(voc), ('test', ))


def test_classes_that_are_not_the_configs(voc):
    with pytest.raises(DataCheckError) as err:
        check_data(_cfg(voc, classes=None), ('test', ))  # mmdet's VOC classes
    msg = str(err.value)
    assert "No annotated object" in msg and 'aeroplane' in msg
    found = [c for c in SYNTH_CLASSES if f'{c} (' in msg]
    assert found and 'metainfo = dict(classes=' in msg and 'num_classes' in msg


def test_read_voc_boxes_matches_mmdet(voc):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    from fq_det.datasets.voc_xml import read_voc_boxes
    init_default_scope('mmdet')
    cfg = _cfg(voc)
    ds = DATASETS.build(dict(cfg.test_dataloader.dataset, pipeline=[]))
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        xml = voc / 'VOC2007/Annotations' / f'{info["img_id"]}.xml'
        assert np.array_equal(read_voc_boxes(xml), [inst['bbox'] for inst in info['instances']])


def _split(root: Path) -> Path:
    return root / 'VOC2007/ImageSets/Main/test.txt'


def test_split_files_that_mmdet_would_misread_are_named_with_their_lines(voc):
    split = _split(voc)
    ids = _test_ids(voc)
    split.write_text('\n'.join([ids[0], '', ids[1], '  ', *ids[2:]]) + '\n')
    with pytest.raises(DataCheckError, match=rf'{split}: lines 2, 4 are blank'):
        check_data(_cfg(voc), ('test', ))
    split.write_text('\n'.join([ids[0], ids[1] + ' ', *ids[2:]]) + '\n')
    with pytest.raises(DataCheckError, match=rf'{split}: line 2 is an id with spaces around it'):
        check_data(_cfg(voc), ('test', ))
    split.write_bytes(b'\xef\xbb\xbf' + ('\n'.join(ids) + '\n').encode())
    with pytest.raises(DataCheckError, match=rf'{split} starts with a UTF-8 byte-order mark'):
        check_data(_cfg(voc), ('test', ))
    split.write_text('\n'.join([*ids, ids[1]]) + '\n')
    with pytest.raises(DataCheckError, match=rf"{split}: image id '{ids[1]}' is listed twice "
                                             rf'\(lines 2 and {len(ids) + 1}\)'):
        check_data(_cfg(voc), ('test', ))
    split.write_text('\r\n'.join(ids) + '\r\n')  # Windows line ends: mmdet reads them fine
    check_data(_cfg(voc), ('test', ))


def test_a_nan_coordinate_is_named_with_its_file(voc):
    xml = _set_box(voc, _test_ids(voc)[0], 0, xmin='nan')
    with pytest.raises(DataCheckError, match=rf'{xml}: object 0 \(.*\) has a coordinate that is '
                                             r'not a finite number: xmin=nan'):
        check_data(_cfg(voc), ('test', ))


def test_objects_of_other_classes_give_one_warning(voc):
    ids = _test_ids(voc)
    for img_id in ids[:2]:
        xml = voc / 'VOC2007/Annotations' / f'{img_id}.xml'
        tree = ET.parse(xml)
        tree.getroot().findall('object')[0].find('name').text = 'unicorn'
        tree.write(xml)
    with pytest.warns(UserWarning) as record:
        check_data(_cfg(voc), ('test', ))
    lines = [str(w.message) for w in record if 'classes the config does not have' in
             str(w.message)]
    assert len(lines) == 1 and lines[0].startswith('2 object(s) in ') and 'unicorn (2)' in lines[0]
