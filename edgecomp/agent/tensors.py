"""Model inputs and outputs as numpy arrays: seeded inputs, (de)quantization."""


def make_inputs(specs, seed, npz_path=None):
    """One batch of inputs: the first sample of --input-npz, else seeded random data."""
    import numpy as np
    rng = np.random.RandomState(seed)
    stored = None
    if npz_path:
        with np.load(npz_path, allow_pickle=False) as archive:
            stored = dict((k, archive[k]) for k in archive.files)
    arrays = []
    for position, spec in enumerate(specs):
        dtype = np.dtype(spec.dtype)
        shape = [d if d > 0 else 1 for d in spec.shape]
        if stored is not None:
            key = spec.name if spec.name in stored else sorted(stored)[position]
            value = stored[key][:shape[0]] if stored[key].ndim == len(shape) else stored[key]
            arrays.append(to_model_dtype(value.reshape(shape), spec))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            arrays.append(rng.randint(info.min, info.max + 1, size=shape).astype(dtype))
        else:
            arrays.append(rng.random_sample(shape).astype(dtype))
    return arrays


def to_model_dtype(value, spec):
    """Cast a float sample to the input's dtype, quantizing with its scale for int8/uint8."""
    import numpy as np
    dtype = np.dtype(spec.dtype)
    quant = spec.quantization
    if quant and dtype.kind in "iu":
        info = np.iinfo(dtype)
        value = np.round(value / quant.scale + quant.zero_point)
        return np.clip(value, info.min, info.max).astype(dtype)
    return value.astype(dtype)


def from_model_dtype(value, spec):
    """Float output values, dequantizing int8/uint8 outputs with their scale."""
    import numpy as np
    quant = spec.quantization
    if quant and value.dtype.kind in "iu":
        return (value.astype(np.float32) - quant.zero_point) * quant.scale
    return value.astype(np.float32)
