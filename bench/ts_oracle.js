// The TypeScript compiler as the oracle for codegraph's TS/JS edges (used by bench_languages.py).
//
//   node ts_oracle.js TYPESCRIPT_MODULE_DIR ROOT [CONFIG]   ->  JSON on stdout
//
// For every call and `new` expression of ROOT's files: the declaration of its resolved signature
// (or, without one, of the called symbol) when that declaration is in one of ROOT's files; for
// every import / export-from / require() / import() with a literal specifier: the file it
// resolves to when that file is one of ROOT's. Paths are relative to ROOT.
"use strict";
const path = require("path");
const fs = require("fs");
const ts = require(process.argv[2]);
const root = path.resolve(process.argv[3]);
const configPath = process.argv[4];

function walk(dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules" && !entry.name.startsWith(".")) walk(full, out);
    } else if (/\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/.test(entry.name)) {
      out.push(full);
    }
  }
  return out;
}

let options = { allowJs: true, checkJs: false, noEmit: true, skipLibCheck: true,
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler, jsx: ts.JsxEmit.Preserve };
if (configPath) {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.resolve(configPath), {}, {
    ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  if (parsed) options = { ...parsed.options, allowJs: true, noEmit: true, skipLibCheck: true };
}
const files = walk(root, []);
const inRoot = new Set(files.map((f) => path.resolve(f)));
const program = ts.createProgram(files, options);
const checker = program.getTypeChecker();
const host = ts.createCompilerHost(options);
const rel = (f) => path.relative(root, f).split(path.sep).join("/");
const line = (sf, node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;

function declName(decl) {
  if (ts.isConstructorDeclaration(decl)) return "constructor";
  // `obj.m = function () {}`, `exports.f = () => {}`, `C.prototype.m = function m2() {}`: the
  // function is called by the property's name (anonymous ones have no other); not so
  // `module.exports = function f() {}`, which is called by whatever name imports it.
  // (The oracle's name is only matched against the last part of codegraph's qualified name.)
  const assigned = decl.parent;
  if (assigned && ts.isBinaryExpression(assigned) && assigned.right === decl &&
      assigned.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
      ts.isPropertyAccessExpression(assigned.left) &&
      !(ts.isIdentifier(assigned.left.expression) && assigned.left.expression.text === "module")) {
    return assigned.left.name.text;
  }
  // `var f = function g() {}` is called as f (g names it only inside itself).
  if (assigned && ts.isVariableDeclaration(assigned) && assigned.initializer === decl &&
      ts.isFunctionExpression(decl) && ts.isIdentifier(assigned.name)) return assigned.name.text;
  if (decl.name && ts.isIdentifier(decl.name)) return decl.name.text;
  if (decl.name && ts.isPrivateIdentifier(decl.name)) return decl.name.text;
  if (decl.name) return decl.name.getText();
  const parent = decl.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyDeclaration(parent) ||
      ts.isPropertyAssignment(parent)) && parent.name) return parent.name.getText();
  if (ts.isFunctionDeclaration(decl) || ts.isClassDeclaration(decl)) return "default";
  if (parent && ts.isExportAssignment(parent)) return "default";
  return null;
}

// Declarations a call edge can point at: functions, methods, constructors, classes (a `new`
// of a class without a constructor), and function values bound to a variable or property.
function isCallable(decl) {
  if (ts.isFunctionDeclaration(decl) || ts.isMethodDeclaration(decl) || ts.isMethodSignature(decl) ||
      ts.isConstructorDeclaration(decl) || ts.isClassDeclaration(decl) || ts.isClassExpression(decl)) {
    return true;
  }
  return (ts.isArrowFunction(decl) || ts.isFunctionExpression(decl)) && decl.parent &&
    (ts.isVariableDeclaration(decl.parent) || ts.isPropertyDeclaration(decl.parent) ||
     ts.isPropertyAssignment(decl.parent) || ts.isBinaryExpression(decl.parent) ||
     ts.isExportAssignment(decl.parent));
}

function calleeDeclaration(node) {
  let sig;
  try { sig = checker.getResolvedSignature(node); } catch (e) { sig = undefined; }
  if (sig && sig.declaration && !ts.isJSDocSignature(sig.declaration)) return sig.declaration;
  const expr = node.expression;
  let sym = expr && checker.getSymbolAtLocation(expr);
  if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
  if (sym && sym.valueDeclaration) return sym.valueDeclaration;
  if (sym && sym.declarations && sym.declarations.length) return sym.declarations[0];
  return null;
}

const calls = [];
const imports = [];
function resolveSpec(spec, sf) {
  const found = ts.resolveModuleName(spec, sf.fileName, options, host).resolvedModule;
  if (!found) return null;
  const target = path.resolve(found.resolvedFileName);
  return inRoot.has(target) ? rel(target) : null;
}

for (const sf of program.getSourceFiles()) {
  if (!inRoot.has(path.resolve(sf.fileName))) continue;
  const file = rel(sf.fileName);
  const visit = (node) => {
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
      const isImport = ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isCallExpression(node) && ts.isIdentifier(node.expression) &&
        node.expression.text === "require";
      if ((isImport || isRequire) && node.arguments.length && ts.isStringLiteral(node.arguments[0])) {
        const target = resolveSpec(node.arguments[0].text, sf);
        if (target) imports.push([file, line(sf, node), target]);
      } else {
        const decl = calleeDeclaration(node);
        if (decl && isCallable(decl)) {
          const dsf = decl.getSourceFile();
          const name = declName(decl);
          if (inRoot.has(path.resolve(dsf.fileName)) && name) {
            calls.push([file, line(sf, node), rel(dsf.fileName), name]);
          }
        }
      }
    } else if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier &&
               ts.isStringLiteral(node.moduleSpecifier)) {
      const target = resolveSpec(node.moduleSpecifier.text, sf);
      if (target) imports.push([file, line(sf, node), target]);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) &&
               ts.isStringLiteral(node.moduleReference.expression)) {
      const target = resolveSpec(node.moduleReference.expression.text, sf);
      if (target) imports.push([file, line(sf, node), target]);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
process.stdout.write(JSON.stringify({ files: files.length, calls, imports }));
