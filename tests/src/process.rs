//! What the benchmarks read about their own process from Linux's `/proc`.

/// CPU seconds (user + system) this process has used so far, from `/proc/self/stat` (what
/// getrusage reports, in clock ticks of 10 ms: measure over many operations).
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15: indexes 11 and 12 from field 3.
    (ticks(11) + ticks(12)) / 100.0
}
