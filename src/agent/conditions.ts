// Conditions on variables that decide whether a step or group runs.

export type Condition =
  | { variable: string; equals: string; ignoreCase?: boolean }
  | { variable: string; notEquals: string; ignoreCase?: boolean }
  | { variable: string; exists: boolean }
  | { variable: string; matches: string }
  | { and: Condition[] }
  | { or: Condition[] }
  | { not: Condition };

/**
 * Evaluates a condition. A variable that is not defined equals nothing, matches nothing and is not-equal to
 * everything: conditions are how a sequence asks whether a variable exists, so absence is not an error here.
 */
export function evaluateCondition(condition: Condition, lookup: (name: string) => string | undefined): boolean {
  if ('and' in condition) return condition.and.every((c) => evaluateCondition(c, lookup));
  if ('or' in condition) return condition.or.some((c) => evaluateCondition(c, lookup));
  if ('not' in condition) return !evaluateCondition(condition.not, lookup);
  const value = lookup(condition.variable);
  if ('exists' in condition) return (value !== undefined) === condition.exists;
  if ('matches' in condition) return value !== undefined && new RegExp(condition.matches, 'u').test(value);
  const same = (a: string, b: string, ignoreCase?: boolean) => (ignoreCase ? a.toLowerCase() === b.toLowerCase() : a === b);
  if ('equals' in condition) return value !== undefined && same(value, condition.equals, condition.ignoreCase);
  return value === undefined || !same(value, condition.notEquals, condition.ignoreCase);
}

/** A one-line human reading of a condition, for logs ("skipped: condition OSDISK equals disk0 is false"). */
export function describeCondition(condition: Condition): string {
  if ('and' in condition) return `(${condition.and.map(describeCondition).join(' and ')})`;
  if ('or' in condition) return `(${condition.or.map(describeCondition).join(' or ')})`;
  if ('not' in condition) return `not ${describeCondition(condition.not)}`;
  if ('exists' in condition) return `${condition.variable} ${condition.exists ? 'exists' : 'does not exist'}`;
  if ('matches' in condition) return `${condition.variable} matches /${condition.matches}/`;
  if ('equals' in condition) return `${condition.variable} equals "${condition.equals}"`;
  return `${condition.variable} not-equals "${condition.notEquals}"`;
}

export function conditionVariables(condition: Condition): string[] {
  if ('and' in condition) return condition.and.flatMap(conditionVariables);
  if ('or' in condition) return condition.or.flatMap(conditionVariables);
  if ('not' in condition) return conditionVariables(condition.not);
  return [condition.variable];
}
