//! The README's HTTP API table lists exactly the JSON API's routes, with the function serving each.

use std::collections::BTreeSet;

fn readme_rows() -> BTreeSet<(String, String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // | method | `path` | function | auth | what |
            let path = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            path.starts_with("/v1/")
                .then(|| (cells[1].to_owned(), path.to_owned(), cells[3].to_owned()))
        })
        .collect()
}

#[test]
fn readme_lists_every_api_route_and_nothing_else() {
    let code: BTreeSet<(String, String, String)> = mailroom_web::specs()
        .into_iter()
        .filter(|s| s.path.starts_with("/v1/"))
        .map(|s| {
            (
                s.method.to_owned(),
                s.path.to_owned(),
                s.function.name().to_owned(),
            )
        })
        .collect();
    let readme = readme_rows();
    assert!(
        !code.is_empty() && !readme.is_empty(),
        "both sides must have routes"
    );
    let missing: Vec<_> = code.difference(&readme).collect();
    let extra: Vec<_> = readme.difference(&code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README API table is out of date\nmissing: {missing:?}\nnot in the code: {extra:?}"
    );
}
