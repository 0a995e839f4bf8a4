"""Model inputs and outputs as numpy arrays: stored or seeded inputs, (de)quantization.

Input files hold one array per model input, `in0`, `in1`, ... in the model's input order,
each with a sample axis first and every sample in the shape its input takes (the host
writes them so); `x` (samples of the only input, batch axis first) is also read.
"""


def stored_inputs(npz_path, specs):
    """Every sample of an input file as a list of per-input arrays (sample axis first)."""
    import numpy as np
    with np.load(npz_path, allow_pickle=False) as archive:
        stored = dict((k, archive[k]) for k in archive.files)
    if "x" in stored and len(specs) == 1:
        x = stored["x"]  # samples without the batch axis: add it back
        return [x[:, None] if x.ndim == len(specs[0].shape) else x]
    arrays = []
    for position, spec in enumerate(specs):
        key = "in%d" % position
        if key not in stored:
            raise ValueError("%s holds no %s for input %s (it has %s)"
                             % (npz_path, key, spec.name, ", ".join(sorted(stored))))
        arrays.append(stored[key])
    counts = set(len(a) for a in arrays)
    if len(counts) > 1:
        raise ValueError("%s: the inputs hold different numbers of samples" % npz_path)
    return arrays


def sample_inputs(arrays, specs, index):
    """Sample `index` of stored inputs, each shaped and typed as its input takes it."""
    import numpy as np
    fed = []
    for array, spec in zip(arrays, specs):
        value = np.asarray(array[index])
        shape = tuple(spec.shape)
        if all(d > 0 for d in shape) and tuple(value.shape) != shape and \
                value.size == int(np.prod(shape)):
            value = value.reshape(shape)  # e.g. a legacy `x` sample without its batch axis
        fed.append(to_model_dtype(value, spec))
    return fed


def make_inputs(specs, seed, npz_path=None):
    """One set of inputs: the first stored sample of --input-npz, else seeded data.

    Seeded float inputs are uniform in [0, 1); integer and bool inputs are zeros, because
    random token ids, lengths or sample rates fail or mislead more often than zeros.
    """
    import numpy as np
    if npz_path:
        return sample_inputs(stored_inputs(npz_path, specs), specs, 0)
    rng = np.random.RandomState(seed)
    arrays = []
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        shape = [d if d > 0 else 1 for d in spec.shape]
        if dtype.kind in "iub" and not spec.quantization:
            arrays.append(np.zeros(shape, dtype=dtype))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            arrays.append(rng.randint(info.min, info.max + 1, size=shape).astype(dtype))
        else:
            arrays.append(rng.random_sample(shape).astype(dtype))
    return arrays


def to_model_dtype(value, spec):
    """Cast a sample to the input's dtype, quantizing float values with its scale for int8."""
    import numpy as np
    dtype = np.dtype(spec.dtype)
    quant = spec.quantization
    if quant and dtype.kind in "iu" and value.dtype.kind == "f":
        info = np.iinfo(dtype)
        value = np.round(value / quant.scale + quant.zero_point)
        return np.clip(value, info.min, info.max).astype(dtype)
    return np.array(value, dtype=dtype)  # a copy, contiguous, 0-d stays 0-d


def from_model_dtype(value, spec):
    """Float output values, dequantizing int8/uint8 outputs with their scale."""
    import numpy as np
    quant = spec.quantization
    if quant and value.dtype.kind in "iu":
        return (value.astype(np.float32) - quant.zero_point) * quant.scale
    if value.dtype.kind in "iub":
        return value
    return value.astype(np.float32)
