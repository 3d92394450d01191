package yamlread

// scanDepth estimates the nesting depth of YAML source without building
// anything, so that input the parser would recurse on without end (100k
// nested '[', "- - - - …", ever deeper indentation) is refused before the
// parser sees it. It errs towards counting too much: a flow bracket counts
// even where it might be plain text, and every indentation step is a level.
// It stops at the first line deeper than limit and returns that line.
//
// It also counts the lines that start at the column of an open block node
// and are not list items: the keys of one block mapping. The goccy parser
// costs the square of that count in time and memory, so more than maxKeys
// (when positive) stops the scan at the line past the limit, with tooMany
// "keys". Likewise the items of one block list and the entries of one flow
// collection, against maxEntries: the parser's cost is linear there, but
// large, so a hostile file cannot make every check slow.
func scanDepth(src []byte, limit, maxKeys, maxEntries int) (depth, line, col int, tooMany string) {
	var (
		cols      []int // columns of the open block nodes, innermost last
		keys      []int // lines seen at each of cols that were not list items
		items     []int // lines seen at each of cols that were list items
		entries   []int // entries of each open flow collection, innermost last
		flow      int   // open '[' and '{'
		quote     byte  // the open quote, 0 outside quoted scalars
		ln        = 1
		lineStart = 0
		blockPar  = -1 // indentation of the line that opened a block scalar
		blockInd  = -1 // the block scalar's content indentation, once known
	)
	for i := 0; i < len(src); {
		// At a line start: measure indentation and decide what the line is.
		ind := 0
		for i+ind < len(src) && src[i+ind] == ' ' {
			ind++
		}
		j := i + ind
		blank := j >= len(src) || src[j] == '\n' || src[j] == '\r' || src[j] == '#'
		if blockPar >= 0 {
			// Inside a block scalar (| or >) the lines are text.
			if blank && (j >= len(src) || src[j] != '#') {
				i = nextLine(src, j)
				ln++
				lineStart = i
				continue
			}
			if blockInd < 0 && ind > blockPar {
				blockInd = ind
			}
			if blockInd >= 0 && ind >= blockInd {
				i = nextLine(src, j)
				ln++
				lineStart = i
				continue
			}
			blockPar, blockInd = -1, -1
		}
		startOfScalar := true
		if quote == 0 && flow == 0 && !blank {
			cols, keys, items = pushCount(cols, keys, items, ind, !(src[j] == '-' && isBreak(src, j+1)))
			if maxKeys > 0 && keys[len(keys)-1] > maxKeys {
				return depth, ln, ind + 1, "keys"
			}
			if maxEntries > 0 && items[len(items)-1] > maxEntries {
				return depth, ln, ind + 1, "items"
			}
		}
		lineInd := ind
		for j < len(src) && src[j] != '\n' {
			c := src[j]
			switch {
			case quote == '\'':
				if c == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						j++ // '' is an escaped quote
					} else {
						quote = 0
						startOfScalar = false
					}
				}
			case quote == '"':
				if c == '\\' {
					j++
				} else if c == '"' {
					quote = 0
					startOfScalar = false
				}
			case c == '#' && (j == lineStart || src[j-1] == ' ' || src[j-1] == '\t'):
				j = lineEnd(src, j) - 1
			case c == '[' || c == '{':
				if flow > 0 || startOfScalar {
					flow++
					entries = append(entries, 1)
					startOfScalar = true
				}
			case c == ']' || c == '}':
				if flow > 0 {
					flow--
					entries = entries[:len(entries)-1]
				}
				startOfScalar = false
			case c == ',' && flow > 0:
				startOfScalar = true
				if entries[len(entries)-1]++; maxEntries > 0 && entries[len(entries)-1] > maxEntries {
					return depth, ln, j - lineStart + 1, "entries"
				}
			case (c == '\'' || c == '"') && startOfScalar:
				quote = c
			case (c == '-' || c == '?' || c == ':') && isBreak(src, j+1):
				if c != ':' && flow == 0 {
					// "- - x": each indicator opens a node one column on.
					k := j + 1
					for k < len(src) && src[k] == ' ' {
						k++
					}
					if k < len(src) && src[k] != '\n' && src[k] != '#' {
						cols, keys, items = pushCount(cols, keys, items, k-lineStart, src[k] != '-' || !isBreak(src, k+1))
					}
				}
				startOfScalar = true
			case c == ':' && flow > 0:
				startOfScalar = true
			case (c == '|' || c == '>') && startOfScalar && flow == 0 && blockHeader(src, j+1):
				blockPar, blockInd = lineInd, -1
				j = lineEnd(src, j) - 1
			case (c == '&' || c == '!') && startOfScalar:
				// An anchor or tag leaves the scalar still to come.
				for j+1 < len(src) && !isBreak(src, j+1) {
					j++
				}
			case c == ' ' || c == '\t' || c == '\r':
			default:
				startOfScalar = false
			}
			if d := len(cols) + flow; d > depth {
				depth = d
				if depth > limit {
					return depth, ln, j - lineStart + 1, ""
				}
			}
			j++
		}
		i = nextLine(src, j)
		ln++
		lineStart = i
	}
	return depth, 0, 0, ""
}

// pushCount records a block node at column c, keeping keys and items
// (counts per column) in step: deeper columns close, an equal column is a
// sibling, a new column starts at 0, and the line adds one to its column's
// count of keys, or of items when it is a list item.
func pushCount(cols, keys, items []int, c int, key bool) ([]int, []int, []int) {
	for len(cols) > 0 && cols[len(cols)-1] > c {
		cols, keys, items = cols[:len(cols)-1], keys[:len(keys)-1], items[:len(items)-1]
	}
	if len(cols) == 0 || cols[len(cols)-1] != c {
		cols, keys, items = append(cols, c), append(keys, 0), append(items, 0)
	}
	if key {
		keys[len(keys)-1]++
	} else {
		items[len(items)-1]++
	}
	return cols, keys, items
}

func isBreak(src []byte, i int) bool {
	return i >= len(src) || src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r'
}

// blockHeader reports whether what follows | or > is a block scalar
// header: chomping and indentation indicators, then a comment or the end.
func blockHeader(src []byte, i int) bool {
	for ; i < len(src) && src[i] != '\n'; i++ {
		switch c := src[i]; {
		case c == '+' || c == '-' || (c >= '0' && c <= '9'):
		case c == ' ' || c == '\t' || c == '\r':
			for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\r') {
				i++
			}
			return i >= len(src) || src[i] == '\n' || src[i] == '#'
		default:
			return false
		}
	}
	return true
}

func lineEnd(src []byte, i int) int {
	for i < len(src) && src[i] != '\n' {
		i++
	}
	return i
}

func nextLine(src []byte, i int) int {
	i = lineEnd(src, i)
	if i < len(src) {
		i++
	}
	return i
}
