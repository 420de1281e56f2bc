# faster_rcnn_r18_synthvoc.py trained with distortions (the "training with distortions"
# defense): half of the training images get one of the noise family (salt-and-pepper, NGRN,
# Gaussian noise) at a random severity 1-5, at their original resolution. The other
# distortions stay unseen: studies report them separately (docs/studies.md).
_base_ = './faster_rcnn_r18_synthvoc.py'

aug_distortions = ('salt_pepper', 'ngrn', 'gaussian_noise')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomDistort', distortions=aug_distortions, severities=(1, 2, 3, 4, 5), prob=0.5),
    dict(type='Resize', scale={{_base_.image_scale}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
