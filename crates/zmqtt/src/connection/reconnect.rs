//! Reconnection policy: exponential back-off between connection attempts.

use std::time::Duration;

use crate::error::{Error, Result};

/// How the client (re)connects (SPEC 1.5).
///
/// Applies to the first [`connect`](crate::Client::connect) and to every later
/// loss of the connection. Network errors and CONNACK timeouts are retried with
/// exponential back-off; a refusal by the broker ([`Error::Connect`]) or a TLS
/// certificate failure is never retried.
///
/// The first attempt of [`connect`](crate::Client::connect) is made at once and
/// the next ones after 1, 2, 4 and 8 s with the defaults (five attempts). After
/// a lost connection even the first attempt waits (1, 2, 4, 8, 16 s), so a
/// broker that drops the client right after accepting it is not hammered.
///
/// ```
/// use std::time::Duration;
/// use zmqtt::ReconnectConfig;
///
/// let forever = ReconnectConfig {
///     initial_delay: Duration::from_millis(200),
///     max_attempts: None,
///     ..ReconnectConfig::default()
/// };
/// assert_eq!(forever.delay_before(2), Duration::from_millis(400));
/// assert!(!ReconnectConfig::disabled().enabled);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectConfig {
    /// Reconnect at all. When false, one connection attempt is made and a lost
    /// connection stops the client.
    pub enabled: bool,
    /// The delay before the second attempt (and the first after a loss).
    pub initial_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// How much each delay grows over the previous one; at least 1.
    pub backoff_factor: f64,
    /// Attempts per outage before giving up; `None` tries forever.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            enabled: true,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            backoff_factor: 2.0,
            max_attempts: Some(5),
        }
    }
}

impl ReconnectConfig {
    /// No reconnection: one attempt, and a lost connection stops the client.
    pub fn disabled() -> Self {
        ReconnectConfig {
            enabled: false,
            ..ReconnectConfig::default()
        }
    }

    /// The delay before the attempt numbered `retry` of an outage (1 is the
    /// first retry): `initial_delay * backoff_factor^(retry-1)`, at most
    /// `max_delay`. `retry` 0 is the immediate first attempt.
    pub fn delay_before(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
        let factor = self.backoff_factor.max(1.0).powi(exponent);
        let secs = self.initial_delay.as_secs_f64() * factor;
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            return self.max_delay;
        }
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_delay)
    }

    /// Whether the attempts of one outage may go on after `attempts_made`.
    pub(crate) fn may_retry(&self, attempts_made: u32) -> bool {
        self.enabled && self.max_attempts.map_or(true, |max| attempts_made < max)
    }

    /// Checks the values once, before any I/O.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(self.backoff_factor.is_finite() && self.backoff_factor >= 1.0) {
            return Err(Error::invalid(
                "reconnect backoff_factor must be a finite number of at least 1",
            ));
        }
        if self.max_attempts == Some(0) {
            return Err(Error::invalid(
                "reconnect max_attempts must be positive (None tries forever)",
            ));
        }
        if self.max_delay < self.initial_delay {
            return Err(Error::invalid(
                "reconnect max_delay must not be shorter than initial_delay",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_delays_are_1_2_4_8_seconds() {
        let config = ReconnectConfig::default();
        let delays: Vec<u64> = (1..=4).map(|n| config.delay_before(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8]);
        assert_eq!(config.delay_before(0), Duration::ZERO);
        assert!(config.may_retry(4));
        assert!(!config.may_retry(5), "five attempts in all");
    }

    #[test]
    fn delays_are_capped_and_never_overflow() {
        let config = ReconnectConfig {
            max_attempts: None,
            ..ReconnectConfig::default()
        };
        assert_eq!(config.delay_before(7), Duration::from_secs(60));
        assert_eq!(config.delay_before(u32::MAX), Duration::from_secs(60));
        assert!(config.may_retry(u32::MAX));
    }

    #[test]
    fn disabled_never_retries() {
        assert!(!ReconnectConfig::disabled().may_retry(0));
    }

    #[test]
    fn invalid_values_are_refused() {
        let bad_factor = ReconnectConfig {
            backoff_factor: 0.5,
            ..ReconnectConfig::default()
        };
        assert!(bad_factor.validate().is_err());
        let nan = ReconnectConfig {
            backoff_factor: f64::NAN,
            ..ReconnectConfig::default()
        };
        assert!(nan.validate().is_err());
        let zero = ReconnectConfig {
            max_attempts: Some(0),
            ..ReconnectConfig::default()
        };
        assert!(zero.validate().is_err());
        assert!(ReconnectConfig::default().validate().is_ok());
    }
}
