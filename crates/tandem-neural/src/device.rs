//! Where the dense layers' matrix products run. The CPU (the `gemm` crate) is the default and
//! what CI tests. Built with the `cuda` feature, [`select`]`(Device::Cuda(n))` sends products
//! large enough to pay for the copies to cuBLAS on GPU `n`: the operands go over, one SGEMM runs,
//! the result comes back, so every model keeps its host-side code and state. The CUDA libraries
//! are loaded at run time (cudarc's dynamic loading), so the feature builds without a CUDA
//! toolkit and fails only on selection, with an error saying what is missing.

use std::fmt;
use std::str::FromStr;

/// A compute device for the dense products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The host CPU (default).
    #[default]
    Cpu,
    /// The NVIDIA GPU with this ordinal (needs the `cuda` feature).
    Cuda(usize),
}

impl FromStr for Device {
    type Err = String;

    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device `{s}`: expected cpu, cuda or cuda:N")),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Why a device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// This build has no CUDA backend.
    #[error("this build has no CUDA backend: rebuild with `cargo build --release --features cuda`")]
    NotBuilt,
    /// The CUDA libraries or the GPU are missing or failed to start.
    #[error("CUDA device {device} is unavailable: {reason}")]
    Unavailable {
        /// The device asked for.
        device: Device,
        /// What went wrong.
        reason: String,
    },
}

/// Makes `device` the one later dense products run on (process-wide; the first successful
/// CUDA selection stays).
pub fn select(device: Device) -> Result<(), DeviceError> {
    match device {
        Device::Cpu => {
            #[cfg(feature = "cuda")]
            cuda::disable();
            Ok(())
        }
        #[cfg(feature = "cuda")]
        Device::Cuda(n) => cuda::enable(n).map_err(|reason| DeviceError::Unavailable { device, reason }),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(DeviceError::NotBuilt),
    }
}

#[cfg(feature = "cuda")]
pub(crate) mod cuda {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
    use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
    use cudarc::driver::{CudaContext, CudaStream};

    /// Below this many multiply-adds the copies cost more than the CPU product.
    const MIN_WORK: usize = 1 << 20;

    struct Gpu {
        stream: Arc<CudaStream>,
        blas: CudaBlas,
    }

    static GPU: OnceLock<Mutex<Gpu>> = OnceLock::new();
    static ACTIVE: AtomicBool = AtomicBool::new(false);

    pub(super) fn disable() {
        ACTIVE.store(false, Ordering::Release);
    }

    pub(super) fn enable(ordinal: usize) -> Result<(), String> {
        // SAFETY: only tries to open the shared library (no CUDA call is made).
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("the CUDA driver library (libcuda) was not found".into());
        }
        // SAFETY: as above, for cuBLAS.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err("the cuBLAS library (libcublas) was not found".into());
        }
        if GPU.get().is_none() {
            let ctx = CudaContext::new(ordinal).map_err(|e| e.to_string())?;
            let stream = ctx.default_stream();
            let blas = CudaBlas::new(stream.clone()).map_err(|e| e.to_string())?;
            let _ = GPU.set(Mutex::new(Gpu { stream, blas }));
        }
        ACTIVE.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs the row-major `c = alpha op(a) op(b) + beta c` on the selected GPU — as the
    /// column-major `c^T = op(b)^T op(a)^T` — when one is selected and the product is big
    /// enough; false when the caller should run it on the CPU.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: &[f32],
        ta: bool,
        b: &[f32],
        tb: bool,
        beta: f32,
        c: &mut [f32],
    ) -> bool {
        if !ACTIVE.load(Ordering::Acquire) || m * n * k < MIN_WORK {
            return false;
        }
        let Some(gpu) = GPU.get() else { return false };
        let gpu = gpu.lock().unwrap_or_else(|e| e.into_inner());
        let mut run = || -> Result<(), String> {
            let s = &gpu.stream;
            let da = s.clone_htod(&a[..m * k]).map_err(|e| e.to_string())?;
            let db = s.clone_htod(&b[..k * n]).map_err(|e| e.to_string())?;
            let mut dc = if beta != 0.0 {
                s.clone_htod(&c[..m * n]).map_err(|e| e.to_string())?
            } else {
                s.alloc_zeros::<f32>(m * n).map_err(|e| e.to_string())?
            };
            // Row-major b (k x n, or n x k when tb) read column-major is b^T (ld n) or b (ld k).
            let cfg = GemmConfig {
                transa: if tb { CUBLAS_OP_T } else { CUBLAS_OP_N },
                transb: if ta { CUBLAS_OP_T } else { CUBLAS_OP_N },
                m: n as i32,
                n: m as i32,
                k: k as i32,
                alpha,
                lda: if tb { k } else { n } as i32,
                ldb: if ta { m } else { k } as i32,
                beta,
                ldc: n as i32,
            };
            // SAFETY: the device buffers hold exactly the shapes the configuration describes.
            unsafe { gpu.blas.gemm(cfg, &db, &da, &mut dc) }.map_err(|e| e.to_string())?;
            s.memcpy_dtoh(&dc, &mut c[..m * n]).map_err(|e| e.to_string())?;
            Ok(())
        };
        match run() {
            Ok(()) => true,
            Err(e) => {
                // A failing GPU must not stop training: say so once, go on on the CPU.
                eprintln!("warning: cuBLAS SGEMM failed ({m}x{k}x{n}): {e}; continuing on the CPU");
                disable();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse::<Device>(), Ok(Device::Cuda(3)));
        assert!("gpu".parse::<Device>().unwrap_err().contains("cpu, cuda or cuda:N"));
        assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
        select(Device::Cpu).unwrap();
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let e = select(Device::Cuda(0)).unwrap_err().to_string();
        assert!(e.contains("--features cuda"), "{e}");
    }

    /// On a machine with a GPU (`cargo test -p tandem-neural --features cuda`): every transpose
    /// combination agrees with the CPU product.
    #[cfg(feature = "cuda")]
    #[test]
    fn cublas_matches_the_cpu_product() {
        if let Err(e) = select(Device::Cuda(0)) {
            eprintln!("skipped: {e}");
            return;
        }
        let (m, k, n) = (130, 120, 140);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 / 11.0 - 0.5).collect();
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut want = vec![0.5f32; m * n];
            let mut got = want.clone();
            select(Device::Cpu).unwrap();
            crate::dense::gemm(m, k, n, 0.7, &a, ta, &b, tb, 0.3, &mut want);
            select(Device::Cuda(0)).unwrap();
            assert!(cuda::gemm(m, k, n, 0.7, &a, ta, &b, tb, 0.3, &mut got), "ran on the GPU");
            for (x, y) in want.iter().zip(&got) {
                assert!((x - y).abs() < 1e-3, "ta {ta} tb {tb}: {x} vs {y}");
            }
        }
        select(Device::Cpu).unwrap();
    }
}
