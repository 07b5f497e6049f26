//! The cap on calls toward IWD: at most `rate` calls started per second and at
//! most `max_in_flight` at once, for the whole operator. Only the leader calls
//! IWD, so the operator's cap is the cluster's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A paced gate: each call reserves the next free start slot, `1/rate` apart.
pub struct Limiter {
    interval: Option<Duration>,
    next_slot: Mutex<Instant>,
    in_flight: Arc<Semaphore>,
}

/// Held while a call is in flight.
pub struct Permit {
    _permit: OwnedSemaphorePermit,
    /// How long the caller waited for it.
    pub waited: Duration,
}

impl Limiter {
    /// `rate` calls per second (0 = unlimited) and `max_in_flight` (at least 1).
    pub fn new(rate: f64, max_in_flight: usize) -> Self {
        Self {
            interval: (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate)),
            next_slot: Mutex::new(Instant::now()),
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }

    pub async fn acquire(&self) -> Permit {
        let started = Instant::now();
        // The semaphore is never closed.
        let permit = match self.in_flight.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => unreachable!("the in-flight semaphore is never closed"),
        };
        if let Some(interval) = self.interval {
            let slot = {
                let mut next = self.next_slot.lock().await;
                let slot = (*next).max(Instant::now());
                *next = slot + interval;
                slot
            };
            tokio::time::sleep_until(slot).await;
        }
        Permit {
            _permit: permit,
            waited: started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paces_calls() {
        let limiter = Arc::new(Limiter::new(10.0, 100));
        let start = Instant::now();
        for _ in 0..21 {
            drop(limiter.acquire().await);
        }
        // 21 calls at 10/s: the last starts 2 s after the first.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn caps_in_flight() {
        let limiter = Arc::new(Limiter::new(0.0, 2));
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        let third = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await.waited }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!third.is_finished());
        drop(a);
        assert_eq!(third.await.expect("joined"), Duration::from_secs(1));
    }
}
