// / – what this server is
import Link from "next/link";

export default function HomePage() {
  return (
    <main className="narrow">
      <h1>wavault</h1>
      <p>
        This server keeps WhatsApp Web sessions in PocketBase, so that a product built on WhatsApp survives deploys,
        restarts and moves between servers without anyone scanning a QR code again.
      </p>
      <p>
        <Link href="/login">Sign in</Link> or <Link href="/signup">create an account</Link> to connect your WhatsApp.
      </p>
    </main>
  );
}
