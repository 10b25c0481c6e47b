//! The monitor's restart decision: whether a container that exited is started again,
//! and after how long (docker's backoff).

use coracle_model::RestartPolicy;
use std::time::Duration;

/// docker's restart backoff: doubling from 100 ms, at most a minute, back to the
/// start once a container ran for 10 s.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// How a run of the container ended, as the restart policy weighs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exit {
    pub code: i32,
    /// Restarts so far (docker's `RestartCount`).
    pub restarts: u32,
    /// `stop`/`kill` was asked for: no policy restarts it.
    pub stopped_by_user: bool,
    /// How long this run lasted.
    pub ran_for: Duration,
}

/// The delays between the restarts of one container (one per monitor).
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            next: BACKOFF_START,
        }
    }

    /// The wait before restarting a container whose last run lasted `ran_for`.
    fn delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= BACKOFF_RESET_AFTER {
            self.next = BACKOFF_START;
        }
        let delay = self.next;
        self.next = (delay * 2).min(BACKOFF_MAX);
        delay
    }
}

/// When the container is started again under `policy` (`update --restart` may change
/// it between runs): after the returned wait, or never (None).
pub(crate) fn next_start(
    policy: &RestartPolicy,
    exit: &Exit,
    backoff: &mut Backoff,
) -> Option<Duration> {
    policy
        .should_restart(exit.code, exit.restarts, exit.stopped_by_user)
        .then(|| backoff.delay(exit.ran_for))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32, restarts: u32) -> Exit {
        Exit {
            code,
            restarts,
            stopped_by_user: false,
            ran_for: Duration::from_millis(50),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn no_policy_never_restarts() {
        let mut b = Backoff::new();
        assert_eq!(next_start(&RestartPolicy::No, &exit(1, 0), &mut b), None);
        assert_eq!(next_start(&RestartPolicy::No, &exit(0, 0), &mut b), None);
    }

    #[test]
    fn always_and_unless_stopped_restart_whatever_the_code() {
        for policy in [RestartPolicy::Always, RestartPolicy::UnlessStopped] {
            for code in [0, 1, 137] {
                let mut b = Backoff::new();
                assert_eq!(next_start(&policy, &exit(code, 7), &mut b), Some(ms(100)));
            }
        }
    }

    #[test]
    fn a_stop_by_the_user_wins_over_every_policy() {
        let stopped = Exit {
            stopped_by_user: true,
            ..exit(137, 0)
        };
        for policy in [
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max: None },
        ] {
            assert_eq!(next_start(&policy, &stopped, &mut Backoff::new()), None);
        }
    }

    #[test]
    fn on_failure_restarts_failures_up_to_its_maximum() {
        let mut b = Backoff::new();
        let unlimited = RestartPolicy::OnFailure { max: None };
        assert_eq!(next_start(&unlimited, &exit(0, 0), &mut b), None);
        assert!(next_start(&unlimited, &exit(2, 1000), &mut b).is_some());
        let three = RestartPolicy::OnFailure { max: Some(3) };
        assert!(next_start(&three, &exit(1, 2), &mut b).is_some());
        assert_eq!(next_start(&three, &exit(1, 3), &mut b), None);
        assert_eq!(next_start(&three, &exit(0, 0), &mut b), None);
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let mut b = Backoff::new();
        let delays: Vec<Duration> = (0..12)
            .filter_map(|n| next_start(&RestartPolicy::Always, &exit(1, n), &mut b))
            .collect();
        let want: Vec<Duration> = [
            100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000,
        ]
        .into_iter()
        .map(ms)
        .collect();
        assert_eq!(delays, want);
    }

    #[test]
    fn backoff_starts_over_after_a_run_of_ten_seconds() {
        let mut b = Backoff::new();
        for _ in 0..5 {
            next_start(&RestartPolicy::Always, &exit(1, 0), &mut b);
        }
        let long = Exit {
            ran_for: Duration::from_secs(10),
            ..exit(1, 5)
        };
        assert_eq!(
            next_start(&RestartPolicy::Always, &long, &mut b),
            Some(ms(100))
        );
        assert_eq!(
            next_start(&RestartPolicy::Always, &exit(1, 6), &mut b),
            Some(ms(200))
        );
        // A run just short of it keeps doubling.
        let short = Exit {
            ran_for: ms(9_999),
            ..exit(1, 7)
        };
        assert_eq!(
            next_start(&RestartPolicy::Always, &short, &mut b),
            Some(ms(400))
        );
    }

    #[test]
    fn a_run_without_restart_leaves_the_backoff_as_it_was() {
        let mut b = Backoff::new();
        next_start(&RestartPolicy::Always, &exit(1, 0), &mut b);
        let stopped = Exit {
            stopped_by_user: true,
            ..exit(1, 1)
        };
        assert_eq!(next_start(&RestartPolicy::Always, &stopped, &mut b), None);
        assert_eq!(
            next_start(&RestartPolicy::Always, &exit(1, 1), &mut b),
            Some(ms(200))
        );
    }
}
