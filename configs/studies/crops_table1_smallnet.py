# The supplement's Table 1 on the embedded data: the Table 2 network (CifarSmallNet) on the
# synthetic set's object crops, plain and +POW-k (k = 1, 2, 4, 8, 16) with L1 and with L2
# regularisation (weight 1e-4), in both readings of the exponent (offset: p = 1 + alpha,
# direct: p = alpha), 5 seeds. Table 1 reports the clean error; the sweep (severity 3)
# comes with it.
#   python tools/robustness_study.py run configs/studies/crops_table1_smallnet.py --jobs 2
_net = 'configs/classification/synthvoc/smallnet_synthvoc-crops.py'
_hooks = [dict(type='mmdet.AlphaRegularizationHook')]


def _pow(k, reg, exponent):
    return {'model.backbone.quant_cfg': dict(type='POW', num_splits=k, exponent=exponent,
                                             alpha_reg=dict(type=reg, weight=1e-4)),
            'custom_hooks': _hooks}


_variants = dict(plain=dict(config=_net, label='Base'))
for _exp in ('offset', 'direct'):
    for _reg in ('L1', 'L2'):
        for _k in (1, 2, 4, 8, 16):
            _variants[f'pow{_k}_{_reg.lower()}_{_exp}'] = dict(
                config=_net, cfg_options=_pow(_k, _reg, _exp),
                label=f'+POW-{_k} {_reg} {_exp}')
study = dict(
    runs='crops_table1_smallnet',
    task='classification',
    data=dict(type='synthvoc', num_train=2000, num_test=1000, image_size=(160, 120), seed=0),
    variants=_variants,
    reference='plain',
    seeds=[0, 1, 2, 3, 4],
    distortions='all',
    severities=[3],
    train=dict(epochs=6),
    bootstrap=dict(replicates=1000, confidence=0.95),
)
