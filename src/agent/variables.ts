// Task-sequence variables: case-insensitive names (as in ConfigMgr), %NAME% substitution with %% for a
// literal percent sign, and an error — never an empty string — for a variable that is not defined.

/** A variable name: a letter or underscore, then letters, digits, underscores. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Names starting with an underscore are set by the agent; a sequence cannot set them. */
export function isBuiltinName(name: string): boolean {
  return name.startsWith('_');
}

export class UndefinedVariableError extends Error {
  constructor(
    readonly variable: string,
    readonly where: string,
  ) {
    super(
      isBuiltinName(variable)
        ? `built-in variable %${variable}% is not available on this machine (used in ${where})`
        : `variable %${variable}% is not defined (used in ${where}); define it with a set-variable step, in the sequence's "variables", or pass it with the deployment (--var ${variable}=...)`,
    );
  }
}

/** Variables of one run. Names compare case-insensitively; the spelling first used is kept for display. */
export class Variables {
  private readonly values = new Map<string, { name: string; value: string }>();

  constructor(initial?: Record<string, string>) {
    if (initial) for (const [k, v] of Object.entries(initial)) this.set(k, v);
  }

  set(name: string, value: string): void {
    const key = name.toUpperCase();
    this.values.set(key, { name: this.values.get(key)?.name ?? name, value });
  }

  get(name: string): string | undefined {
    return this.values.get(name.toUpperCase())?.value;
  }

  has(name: string): boolean {
    return this.values.has(name.toUpperCase());
  }

  delete(name: string): void {
    this.values.delete(name.toUpperCase());
  }

  /** Plain object, in insertion order (for the state file and reports). */
  toObject(filter: (name: string) => boolean = () => true): Record<string, string> {
    const out: Record<string, string> = {};
    for (const { name, value } of this.values.values()) if (filter(name)) out[name] = value;
    return out;
  }

  /** Replaces every %NAME% in text; `where` names the field for the error message. */
  substitute(text: string, where: string): string {
    return substitute(text, (name) => this.get(name), where);
  }
}

type Token = { literal: string } | { variable: string };

/**
 * Splits text into literals and %NAME% references. `%%` is a literal `%`; a `%` that does not start a
 * well-formed reference (e.g. "100% done") stays literal, so ordinary text needs no escaping.
 */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '%') {
      literal += c;
      i++;
      continue;
    }
    if (text[i + 1] === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    const end = text.indexOf('%', i + 1);
    const name = end > 0 ? text.slice(i + 1, end) : '';
    if (end > 0 && VARIABLE_NAME.test(name)) {
      if (literal) tokens.push({ literal });
      literal = '';
      tokens.push({ variable: name });
      i = end + 1;
    } else {
      literal += '%';
      i++;
    }
  }
  if (literal) tokens.push({ literal });
  return tokens;
}

export function referencedVariables(text: string): string[] {
  return tokenize(text).flatMap((t) => ('variable' in t ? [t.variable] : []));
}

export function substitute(text: string, lookup: (name: string) => string | undefined, where: string): string {
  let out = '';
  for (const token of tokenize(text)) {
    if ('literal' in token) out += token.literal;
    else {
      const value = lookup(token.variable);
      if (value === undefined) throw new UndefinedVariableError(token.variable, where);
      out += value;
    }
  }
  return out;
}

/** The text that substitutes back to `text` (every % doubled). */
export function escapeText(text: string): string {
  return text.replaceAll('%', '%%');
}

/** Parses K=V pairs from the command line or a deployment. */
export function parseAssignment(text: string): [string, string] {
  const eq = text.indexOf('=');
  const name = eq > 0 ? text.slice(0, eq) : '';
  if (!VARIABLE_NAME.test(name)) throw new Error(`bad variable assignment "${text}": use NAME=VALUE, NAME made of letters, digits and _`);
  if (isBuiltinName(name)) throw new Error(`variable ${name} is reserved: names starting with _ are set by the agent`);
  return [name, text.slice(eq + 1)];
}
