//! Holding the cyclic garbage collector off while a large batch of rows is decoded.
//!
//! Rows with lists (arrays) or dicts in them are GC containers, and each allocation of
//! one counts towards a young-generation collection: decoding 10,000 arrays would run
//! about fourteen collections, each walking every row decoded so far, only to promote
//! them all. Pausing the collector for the batch lets one collection afterwards see
//! them once. Nothing the batch builds can be garbage yet (the rows are all kept).

use pyo3::Python;

/// Chunks smaller than this hold too few rows for the pause to matter.
const MIN_CHUNK: usize = 4 * 1024;

/// Re-enables the collector when dropped, if this pause disabled it.
pub(super) struct GcPause {
    #[cfg_attr(not(Py_3_10), allow(dead_code))]
    disabled: bool,
}

impl GcPause {
    /// Pauses the collector for a chunk of `len` bytes from the server, if it is large.
    pub(super) fn for_chunk(_py: Python<'_>, len: usize) -> GcPause {
        #[cfg(Py_3_10)]
        if len >= MIN_CHUNK {
            // SAFETY: the GIL is held (`_py`); PyGC_Disable returns the previous state.
            let was_enabled = unsafe { pyo3::ffi::PyGC_Disable() } != 0;
            return GcPause {
                disabled: was_enabled,
            };
        }
        #[cfg(not(Py_3_10))]
        let _ = (len, MIN_CHUNK);
        GcPause { disabled: false }
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        #[cfg(Py_3_10)]
        if self.disabled {
            // SAFETY: dropped where it was made, with the GIL still held (data_received
            // does not release it).
            unsafe {
                pyo3::ffi::PyGC_Enable();
            }
        }
    }
}
