//! `/metrics` parsed with prometheus-parse, for assertions by name and labels.

/// A parsed /metrics exposition.
pub struct Scrape(prometheus_parse::Scrape);

impl Scrape {
    /// `/metrics` of the service at `base` (a process the test started), parsed.
    pub async fn fetch(client: &reqwest::Client, base: &str) -> Scrape {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("an exposition");
        Scrape::parse(&text)
    }

    pub fn parse(text: &str) -> Scrape {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).expect("valid exposition"))
    }

    /// The sum of the samples named `name` whose labels include `labels`. Histograms count
    /// their observations (the `+Inf` bucket).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        use prometheus_parse::Value;
        self.samples(name, labels)
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                Value::Histogram(buckets) => buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(0.0, |b| b.count),
                Value::Summary(_) => panic!("{name} is a summary"),
            })
            .sum()
    }

    pub fn samples<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a prometheus_parse::Sample> + 'a {
        self.0.samples.iter().filter(move |s| {
            s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
        })
    }

    pub fn all(&self) -> &[prometheus_parse::Sample] {
        &self.0.samples
    }

    /// The HELP text of a family.
    pub fn help(&self, family: &str) -> Option<&str> {
        self.0.docs.get(family).map(String::as_str)
    }
}
