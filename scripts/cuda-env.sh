# Sourced (`source scripts/cuda-env.sh`) before building with `--features cuda`: points nvcc,
# candle's kernel build and cudarc at the toolkit scripts/setup-cuda.sh put in .cuda/.
_osprey_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CUDA_HOME="$_osprey_root/.cuda/nvidia/cu13"
export CUDA_PATH="$CUDA_HOME"
export PATH="$CUDA_HOME/bin:$PATH"
# No GPU to ask at build time: compile the kernels for the H100/H200 (sm_90) unless told.
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# candle's kernel build runs nvcc on every core (it defaults to half of them).
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
# Where the linker finds the wheels' libraries and the stub libcuda.so (setup-cuda.sh --link),
# whatever cudarc's build script saw when it first ran.
export LIBRARY_PATH="$CUDA_HOME/lib/stubs:$CUDA_HOME/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
# The runtime libraries of the wheels (libcudart, libcublas, ...), for a built binary.
export LD_LIBRARY_PATH="$CUDA_HOME/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _osprey_root
