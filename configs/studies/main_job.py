# The main job (`make demo`, demo/main_job.py): one seed of the small Faster R-CNN (ResNet-18
# at 1/4 width) plain and +POW-1 (offset reading, L1 1e-4, stages 2-4), each backbone first
# pretrained by classifying the synthetic set's object crops (the stand-in for the ImageNet
# weights real VOC training starts from), swept over the paper's distortions at every
# severity on 60 test images, with the image bootstrap of POW - plain.
#   python demo/main_job.py --out-dir outputs/demo
#   python demo/main_job.py --cfg-options data.num_train=200 train.iters=100   # smaller
study = dict(
    name='main_job',
    task='detection',
    data=dict(type='synthvoc', num_train=2000, num_test=60, image_size=(160, 120), seed=0),
    variants=dict(
        plain=dict(config='configs/synthvoc/faster_rcnn_r18_synthvoc.py',
                   pretrain='configs/classification/synthvoc/resnet18_synthvoc-crops.py',
                   label='ResNet-18'),
        pow=dict(config='configs/synthvoc/faster_rcnn_r18_pow_synthvoc.py',
                 pretrain='configs/classification/synthvoc/resnet18-pow1-l1_synthvoc-crops.py',
                 label='ResNet-18+POW-1'),
    ),
    reference='plain',
    seeds=[0],
    distortions='paper',
    severities=[1, 2, 3, 4, 5],
    bootstrap=dict(replicates=1000, confidence=0.95),
)
