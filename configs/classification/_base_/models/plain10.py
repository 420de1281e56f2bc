# Supplement Table 4: Plain-10 (9 conv + fc-1000); quantizers after the ReLUs of every stage.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='Plain10', base_channels=64, stem_stride=1, stage_with_quant=(True, True, True, True)),
    head=dict(type='ClsHead', num_classes=1000, in_channels=512))
