// Command go_oracle prints, for every non-test Go file of the packages below a root that the
// default build context selects, what go/types says each call expression's callee and each
// import resolve to: one JSON object per line. bench/bench_languages_go.py compares codegraph's
// call and import edges with it.
//
// Usage: go_oracle ROOT MODULE   (MODULE "std": ROOT is a GOROOT/src-like tree whose packages
// are named by their directory; otherwise import paths are MODULE/<dir>).
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type record struct {
	Kind string `json:"kind"`
	File string `json:"file"`
	Line int    `json:"line"`
	Dst  string `json:"dst"`
}

type loader struct {
	root, module string
	fset         *token.FileSet
	ctxt         build.Context
	pkgs         map[string]*types.Package
	dirs         map[string]string // import path -> dir, for packages below root
	out          *json.Encoder
	checked      map[string]bool
	failed       int
}

func (l *loader) importPath(dir string) string {
	rel, _ := filepath.Rel(l.root, dir)
	rel = filepath.ToSlash(rel)
	if i := strings.LastIndex("/"+rel, "/vendor/"); i >= 0 {
		return rel[i+len("/vendor/")-1:]
	}
	if l.module == "std" {
		return rel
	}
	if rel == "." {
		return l.module
	}
	return l.module + "/" + rel
}

func (l *loader) Import(path string) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	if p, ok := l.pkgs[path]; ok {
		if p == nil {
			return nil, fmt.Errorf("import cycle or failure: %s", path)
		}
		return p, nil
	}
	dir, ok := l.dirs[path]
	if !ok {
		return nil, fmt.Errorf("not below root: %s", path)
	}
	l.pkgs[path] = nil
	p := l.check(path, dir)
	l.pkgs[path] = p
	return p, nil
}

func (l *loader) check(path, dir string) *types.Package {
	bp, err := l.ctxt.ImportDir(dir, 0)
	if err != nil && bp == nil {
		return types.NewPackage(path, "x")
	}
	var files []*ast.File
	for _, name := range bp.GoFiles {
		f, err := parser.ParseFile(l.fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err == nil {
			files = append(files, f)
		}
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: l, Error: func(error) {}, FakeImportC: true}
	pkg, _ := conf.Check(path, l.fset, files, info)
	for _, f := range files {
		l.emit(f, info)
	}
	return pkg
}

func (l *loader) rel(pos token.Pos) (string, int) {
	p := l.fset.Position(pos)
	rel, _ := filepath.Rel(l.root, p.Filename)
	return filepath.ToSlash(rel), p.Line
}

func (l *loader) qname(f *types.Func) string {
	f = f.Origin()
	if f.Pkg() == nil {
		return ""
	}
	sig, _ := f.Type().(*types.Signature)
	if sig != nil && sig.Recv() != nil {
		t := sig.Recv().Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		named, ok := t.(*types.Named)
		if !ok {
			return ""
		}
		return f.Pkg().Path() + "." + named.Origin().Obj().Name() + "." + f.Name()
	}
	return f.Pkg().Path() + "." + f.Name()
}

func (l *loader) emit(f *ast.File, info *types.Info) {
	file, _ := l.rel(f.Pos())
	if l.checked[file] {
		return
	}
	l.checked[file] = true
	l.out.Encode(record{"file", file, 0, ""})
	for _, spec := range f.Imports {
		path := strings.Trim(spec.Path.Value, "\"`")
		if _, ok := l.dirs[path]; ok {
			_, line := l.rel(spec.Pos())
			l.out.Encode(record{"import", file, line, path})
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		fun := call.Fun
		for {
			if p, ok := fun.(*ast.ParenExpr); ok {
				fun = p.X
				continue
			}
			if ix, ok := fun.(*ast.IndexExpr); ok {
				fun = ix.X
				continue
			}
			if ix, ok := fun.(*ast.IndexListExpr); ok {
				fun = ix.X
				continue
			}
			break
		}
		var id *ast.Ident
		switch e := fun.(type) {
		case *ast.Ident:
			id = e
		case *ast.SelectorExpr:
			id = e.Sel
		}
		if id == nil {
			return true
		}
		fn, ok := info.Uses[id].(*types.Func)
		if !ok || fn.Pkg() == nil {
			return true
		}
		if _, in := l.dirs[fn.Pkg().Path()]; !in {
			return true
		}
		if q := l.qname(fn); q != "" {
			_, line := l.rel(call.Fun.Pos())
			l.out.Encode(record{"call", file, line, q})
		}
		return true
	})
}

func main() {
	root, _ := filepath.Abs(os.Args[1])
	l := &loader{root: root, module: os.Args[2], fset: token.NewFileSet(), ctxt: build.Default,
		pkgs: map[string]*types.Package{}, dirs: map[string]string{},
		out: json.NewEncoder(os.Stdout), checked: map[string]bool{}}
	l.ctxt.CgoEnabled = false
	filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if fi.IsDir() {
			name := fi.Name()
			if path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			ip := l.importPath(path)
			if _, seen := l.dirs[ip]; !seen {
				l.dirs[ip] = path
			}
		}
		return nil
	})
	paths := make([]string, 0, len(l.dirs))
	for p := range l.dirs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		l.Import(p)
	}
}
