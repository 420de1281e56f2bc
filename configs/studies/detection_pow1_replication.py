# A replication on fresh seeds of the one detectable quantizer effect in
# detection_quantizers.py (POW-1 mPC +0.010 [+0.004, +0.017] over seeds 0-4, one of 20
# comparisons): the same plain and POW-1 detectors, data and protocol, seeds 5-9 only.
# Shares the run folder with the other detection studies.
#   python tools/robustness_study.py run configs/studies/detection_pow1_replication.py --jobs 2
_det = 'configs/synthvoc/'
_crops = 'configs/classification/synthvoc/'
study = dict(
    runs='detection_synthvoc',
    task='detection',
    data=dict(type='synthvoc', num_train=2000, num_test=300, image_size=(160, 120), seed=0),
    variants=dict(
        plain=dict(config=_det + 'faster_rcnn_r18_synthvoc.py',
                   pretrain=_crops + 'resnet18_synthvoc-crops.py', label='ResNet-18'),
        pow1=dict(config=_det + 'faster_rcnn_r18_pow_synthvoc.py',
                  pretrain=_crops + 'resnet18-pow1-l1_synthvoc-crops.py', label='+POW-1'),
    ),
    reference='plain',
    seeds=[5, 6, 7, 8, 9],
    distortions='all',
    severities=[1, 3, 5],
    bootstrap=dict(replicates=1000, confidence=0.95),
)
