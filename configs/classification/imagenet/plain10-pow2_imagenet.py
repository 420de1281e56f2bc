_base_ = './plain10-pow1_imagenet.py'  # Table 3: Plain-10 +POW-2
model = dict(backbone=dict(quant_cfg=dict(num_splits=2)))
