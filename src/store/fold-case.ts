/**
 * Case folding for the unique, case-insensitive names (userName, group displayName). Both stores
 * write it to user_name_lower/display_name_lower rather than use the database's folding: PostgreSQL's
 * lower() depends on LC_CTYPE (a C-locale server would not fold 'Ä') and SQLite's NOCASE and lower()
 * fold ASCII only; toLowerCase is the same everywhere.
 */
export function foldCase(name: string): string {
  return name.toLowerCase();
}
