//! CPU time from `getrusage`: of this process (all its threads), or of its reaped
//! children (pgbench).

use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

/// User and system CPU time.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel on the process's behalf.
    pub sys: Duration,
}

impl Usage {
    /// CPU of this process so far, every thread included: on the multi-thread
    /// runtime, the workers and tokio-postgres' connection task count too.
    pub fn this_process() -> Usage {
        rusage(libc::RUSAGE_SELF)
    }

    /// CPU of the children this process has waited for so far.
    pub fn children() -> Usage {
        rusage(libc::RUSAGE_CHILDREN)
    }

    /// `self - earlier`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }

    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.sys
    }
}

fn rusage(who: libc::c_int) -> Usage {
    let mut ru = MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `ru` is a valid, writable `rusage`; getrusage fills it and fails
    // only for an invalid `who`, which the two callers never pass.
    let ru = unsafe {
        let rc = libc::getrusage(who, ru.as_mut_ptr());
        assert_eq!(rc, 0, "getrusage failed");
        ru.assume_init()
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Usage {
        user: time(ru.ru_utime),
        sys: time(ru.ru_stime),
    }
}

/// What a cell measured: operations, and the CPU and wall time they took.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Operations completed (and checked).
    pub ops: u64,
    /// Client CPU over the measured spans.
    pub cpu: Usage,
    /// Wall time over the same spans.
    pub wall: Duration,
}

/// A measured span in progress.
pub struct Span {
    cpu: Usage,
    wall: Instant,
}

impl Span {
    /// Starts measuring.
    pub fn start() -> Span {
        Span {
            cpu: Usage::this_process(),
            wall: Instant::now(),
        }
    }

    /// Ends the span, adding it and its `ops` operations to `sample`.
    pub fn stop(self, sample: &mut Sample, ops: u64) {
        let wall = self.wall.elapsed();
        let cpu = Usage::this_process().since(self.cpu);
        sample.ops += ops;
        sample.cpu.user += cpu.user;
        sample.cpu.sys += cpu.sys;
        sample.wall += wall;
    }
}
