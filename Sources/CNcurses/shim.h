// A thin shim over ncursesw: SwiftPM drops ncursesw's -D_XOPEN_SOURCE cflags, so the wide-char
// API is switched on here; C globals (LINES, COLS, COLORS, stdscr) and macros are read through
// functions, which Swift 6's strict concurrency accepts.
#ifndef MESHTOP_CNCURSES_SHIM_H
#define MESHTOP_CNCURSES_SHIM_H
#define NCURSES_WIDECHAR 1
#define _XOPEN_SOURCE_EXTENDED 1
#include <wchar.h>
#include <locale.h>
#include <langinfo.h>
#include <curses.h>

static inline WINDOW *mt_stdscr(void) { return stdscr; }
static inline int mt_lines(void) { return LINES; }
static inline int mt_cols(void) { return COLS; }
static inline int mt_colors(void) { return COLORS; }
static inline int mt_color_pairs(void) { return COLOR_PAIRS; }
static inline int mt_color_pair(int n) { return (int)COLOR_PAIR(n); }
static inline int mt_a_bold(void) { return (int)A_BOLD; }
static inline int mt_a_reverse(void) { return (int)A_REVERSE; }
static inline int mt_a_underline(void) { return (int)A_UNDERLINE; }
static inline int mt_a_dim(void) { return (int)A_DIM; }
static inline int mt_key_resize(void) { return KEY_RESIZE; }
static inline int mt_err(void) { return ERR; }
static inline int mt_key_code_yes(void) { return KEY_CODE_YES; }

/// Sets the locale from the environment and reports whether its codeset is UTF-8.
static inline int mt_setlocale_utf8(void) {
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    return cs != 0 && (cs[0] == 'U' || cs[0] == 'u') && (cs[1] == 'T' || cs[1] == 't') && (cs[2] == 'F' || cs[2] == 'f');
}

/// Writes one wide character with attributes and a colour pair at (y, x).
static inline int mt_put(int y, int x, wchar_t ch, int attrs, short pair) {
    wchar_t wch[2] = { ch, 0 };
    cchar_t cc;
    setcchar(&cc, wch, (attr_t)attrs, pair, 0);
    return mvwadd_wch(stdscr, y, x, &cc);
}

/// Reads one key; returns ERR on timeout, KEY_CODE_YES with *out set for function keys,
/// OK with *out set for a character.
static inline int mt_get_wch(unsigned int *out) {
    wint_t w = 0;
    int rc = wget_wch(stdscr, &w);
    *out = (unsigned int)w;
    return rc;
}
#endif
