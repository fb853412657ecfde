//! Trace-context propagation onto outgoing provider requests.
//!
//! Providers call [`inject_current`] for every HTTP request they send; it writes the headers of
//! the OpenTelemetry context of the current `tracing` span through the global text-map
//! propagator (`opentelemetry::global::set_text_map_propagator`). With the W3C propagator that
//! [`otel::OtlpConfig::install`](super::otel::OtlpConfig::install) sets, that is a `traceparent`
//! header (plus `tracestate` when present), so a provider or gateway that traces can join its
//! spans to the caller's trace.
//!
//! It does nothing without the `otel` feature, without a `tracing-opentelemetry` layer in the
//! subscriber, or while the global propagator is the default no-op one. Compiled without the
//! `telemetry` feature because providers depend on it and nothing else of telemetry.

/// Calls `set(name, value)` for each trace-context header of the current span's OpenTelemetry
/// context, as the global propagator writes them (empty values are left out).
pub fn inject_current(set: impl FnMut(&str, &str)) {
    #[cfg(feature = "otel")]
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        struct Injector<F>(F);
        impl<F: FnMut(&str, &str)> opentelemetry::propagation::Injector for Injector<F> {
            fn set(&mut self, key: &str, value: String) {
                // W3C writes an empty `tracestate` when there is none: no header for that.
                if !value.is_empty() {
                    (self.0)(key, &value);
                }
            }
        }
        let cx = tracing::Span::current().context();
        let mut injector = Injector(set);
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut injector));
    }
    #[cfg(not(feature = "otel"))]
    let _ = set;
}
