# Room to recover: the strongest direct-reading quantizer of crops_pow_readings.py (POW-1
# direct, L1 1e-3, which quantizes most channels of stage 4) and the plain network, both
# trained twice as long (12 epochs instead of 6), 5 seeds, same data and sweep.
#   python tools/robustness_study.py run configs/studies/crops_pow_readings_long.py --jobs 2
_base_ = ['./crops_pow_readings.py']

study = dict(
    variants=dict(
        _delete_=True,
        plain_e12=dict(config={{_base_.study.variants.plain.config}}, label='ResNet-18, 12 epochs'),
        pow1_direct_l1_w1e3_e12=dict(
            config={{_base_.study.variants.pow1_direct_l1_w1e3.config}},
            cfg_options={{_base_.study.variants.pow1_direct_l1_w1e3.cfg_options}},
            label='+POW-1 direct, L1 1e-3, 12 epochs'),
    ),
    reference='plain_e12',
    train=dict(epochs=12),
)
