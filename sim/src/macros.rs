//! Temporary: the builder settings every simulator shares (to be replaced by one builder).

/// `faults`, `rate_limit_scale`, `seed` and `port` for a simulator builder with those fields.

macro_rules! sim_builder_common {
    ($handle:ident) => {
        /// Faults to inject (default none): errors, dropped connections, latency. They can be
        #[doc = concat!("changed later with [`", stringify!($handle), "::set_faults`].")]
        pub fn faults(mut self, faults: $crate::Faults) -> Self {
            self.faults = faults;
            self
        }

        /// Multiplies the rate limits (default 1.0, the published numbers; 100.0 is 100 times
        /// more permissive, 0.1 ten times stricter). Must be finite and positive.
        pub fn rate_limit_scale(mut self, scale: f64) -> Self {
            self.rate_limit_scale = scale;
            self
        }

        /// The seed of the generated data and of the fault decisions (default fixed, so two
        /// simulators built alike serve the same data).
        pub fn seed(mut self, seed: u64) -> Self {
            self.seed = seed;
            self
        }

        /// The port on 127.0.0.1 to listen on (default 0: any free port).
        pub fn port(mut self, port: u16) -> Self {
            self.port = port;
            self
        }
    };
}
