//! Go's `text/tabwriter` as etcdctl's help uses it: `Init(w, 0, 8, 1, '\t', 0)`
//! (minwidth 0, tabwidth 8, padding 1, padded with tabs). Columns are
//! tab-terminated cells; a column block is a run of consecutive lines that
//! have a cell in that column, and every cell of a block is padded to the
//! block's widest cell plus one, rounded up to a multiple of the tab width.

const TAB_WIDTH: usize = 8;
const PADDING: usize = 1;

/// Aligns `text` the way Go's tabwriter (configured as etcdctl's) does.
pub fn align(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() + 64);
    let mut widths = Vec::new();
    format(&lines, &mut out, &mut widths, 0, lines.len());
    out
}

fn width_of(cell: &str) -> usize {
    cell.chars().count()
}

/// Port of tabwriter's recursive `format`.
fn format(
    lines: &[Vec<&str>],
    out: &mut String,
    widths: &mut Vec<usize>,
    line0: usize,
    line1: usize,
) {
    let column = widths.len();
    let mut line0 = line0;
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, out, widths, line0, this);
        line0 = this;
        let mut width = 0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(width_of(lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(width);
        format(lines, out, widths, line0, this);
        widths.pop();
        line0 = this;
    }
    write_lines(lines, out, widths, line0, line1)
}

fn write_lines(
    lines: &[Vec<&str>],
    out: &mut String,
    widths: &[usize],
    line0: usize,
    line1: usize,
) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                let cellw = widths[j].div_ceil(TAB_WIDTH) * TAB_WIDTH;
                let n = cellw - width_of(cell);
                out.extend(std::iter::repeat_n('\t', n.div_ceil(TAB_WIDTH)));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_with_tabs_like_go() {
        // From `etcdctl txn --help` (3.4.23).
        let input = "  -h, --help[=false]\thelp for txn\n  -i, --interactive[=false]\tInput transaction in interactive mode\n";
        let want = "  -h, --help[=false]\t\thelp for txn\n  -i, --interactive[=false]\tInput transaction in interactive mode\n";
        assert_eq!(align(input), want);
    }

    #[test]
    fn blocks_end_at_lines_without_cells() {
        let input = "OPTIONS:\n  -h, --help[=false]\thelp for health\n\nGLOBAL OPTIONS:\n      --insecure-skip-tls-verify[=false]\tx\n      --cacert=\"\"\ty\n";
        let want = "OPTIONS:\n  -h, --help[=false]\thelp for health\n\nGLOBAL OPTIONS:\n      --insecure-skip-tls-verify[=false]\tx\n      --cacert=\"\"\t\t\t\ty\n";
        assert_eq!(align(input), want);
    }

    #[test]
    fn empty_leading_cells_take_one_tab() {
        assert_eq!(
            align("\tget\tGets\n\tput\tPuts\n"),
            "\tget\tGets\n\tput\tPuts\n"
        );
    }
}
