/**
 * Case folding for the unique, case-insensitive names (userName, group displayName). Both stores
 * use this one function: the SQL store writes it to user_name_lower/display_name_lower rather than
 * using SQL lower(), whose result for non-ASCII letters depends on the database's LC_CTYPE (a
 * C-locale PostgreSQL would not fold 'Ä'); toLowerCase is the same everywhere.
 */
export function foldCase(name: string): string {
  return name.toLowerCase();
}
