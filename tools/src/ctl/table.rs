//! The ASCII tables of etcdctl's `-w table` (olekukonko/tablewriter with
//! etcdctl's settings: upper-cased centred headers, right-aligned cells,
//! one space of padding, `+`/`-`/`|` borders).
//!
//! Not reproduced: tablewriter wraps cells longer than 30 columns at word
//! boundaries; cells here are never wrapped.

/// Renders a table the way `etcdctl endpoint status -w table` does.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let border = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = border.clone();
    out.push_str(&line(&header, &widths, centre));
    out.push_str(&border);
    for row in rows {
        out.push_str(&line(row, &widths, right));
    }
    out.push_str(&border);
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn line(cells: &[String], widths: &[usize], pad: fn(&str, usize) -> String) -> String {
    let mut s = String::from("|");
    for (cell, w) in cells.iter().zip(widths) {
        s.push(' ');
        s.push_str(&pad(cell, *w));
        s.push_str(" |");
    }
    s.push('\n');
    s
}

fn centre(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(width(s));
    let left = gap / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(gap - left))
}

fn right(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(width(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_table_matches_etcdctl() {
        let got = render(
            &["endpoint", "health", "took", "error"],
            &[vec![
                "127.0.0.1:23790".into(),
                "true".into(),
                "956.407µs".into(),
                "".into(),
            ]],
        );
        let want = "\
+-----------------+--------+-----------+-------+
|    ENDPOINT     | HEALTH |   TOOK    | ERROR |
+-----------------+--------+-----------+-------+
| 127.0.0.1:23790 |   true | 956.407µs |       |
+-----------------+--------+-----------+-------+
";
        assert_eq!(got, want);
    }

    #[test]
    fn empty_table_has_header_only() {
        let got = render(&["endpoint", "ID"], &[]);
        assert_eq!(
            got,
            "+----------+----+\n| ENDPOINT | ID |\n+----------+----+\n+----------+----+\n"
        );
    }
}
