# The synthetic set's classes and palette (fq_det.datasets.synthetic_voc.SYNTH_CLASSES /
# SYNTH_PALETTE; a test checks they agree), for its VOC and COCO layouts.
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'cross', 'star'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180)])
_num_classes = 5  # len(metainfo['classes'])
