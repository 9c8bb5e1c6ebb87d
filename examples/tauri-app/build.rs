fn main() {
    // Reads tauri.conf.json and capabilities/, and checks the icons.
    tauri_build::build()
}
