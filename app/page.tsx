// The landing page: what this server is. The per-user dashboard comes with its own issue.
export default function HomePage() {
  return (
    <main style={{ maxWidth: 640, margin: "4rem auto", padding: "0 1rem", lineHeight: 1.5 }}>
      <h1>wavault</h1>
      <p>
        This server keeps WhatsApp Web sessions in PocketBase, so that a product built on WhatsApp survives
        deploys, restarts and moves between servers without anyone scanning a QR code again.
      </p>
    </main>
  );
}
