# The supplement's Plain-10 (its Table 4; narrow: base_channels 16, stem stride 1) on the
# synthetic set's object crops: the embedded stand-in for its Table 3 Plain-10 rows (POW-1 ...
# POW-8 under distortion; the quantizer after every stage ReLU when quant_cfg is set).
_base_ = './resnet18_synthvoc-crops.py'

model = dict(
    backbone=dict(_delete_=True, type='Plain10', base_channels=16, stem_stride=1),
    head=dict(in_channels=128))
